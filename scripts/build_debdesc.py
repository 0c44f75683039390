#!/usr/bin/env python3
"""Build BEIR-style corpora of Debian package descriptions from apt's own index files
(Python 3 standard library only; parsing only, no embedding).

Reads the Packages and i18n Translation-LANG files that apt keeps in its list folder
(`Dir::State::lists`, normally /var/lib/apt/lists) and writes, under --out (default data/corpora):

    debdesc/<section>/   one corpus per Debian archive section (topic shift)
    debdesc/all/         every document of those sections in one corpus
    debdesc-lang/<lang>/ the same descriptions in each language (language shift)
    debdesc-unseen/<lang>/ other descriptions per language, none of a debdesc-lang package
    debdesc/MANIFEST.json, debdesc-lang/MANIFEST.json, debdesc-unseen/MANIFEST.json

in the layout of build_corpora.py (its write_beir writes every folder):

    corpus.jsonl      {"_id", "title", "text"}   (title is "")
    queries.jsonl     {"_id", "text"}
    qrels/test.tsv    query-id <TAB> corpus-id <TAB> score   (header line, score 1)

The description files. apt on these machines fetches no description files (Acquire::Languages
"none"); ask for them on the command line:
    apt-get -o Acquire::Languages=en,de,fr,it,ja,ru,... update
(`--apt-languages` prints the value to use when a file is missing, nothing otherwise; `--update`
runs that command itself). The English long descriptions live in Translation-en: a Packages
stanza carries only the synopsis (`Description`) and `Description-md5`, the key of the full
description in every Translation-LANG file (stanzas Package, Description-md5,
Description-LANG: the synopsis on the first line, then the long description). A Packages file
that carries a long description itself (other archives) is used as the English text.

Which index files. Only the release itself: the Release/InRelease files in the list folder whose
Origin is --origin (default Debian) and whose Codename is --release (default VERSION_CODENAME of
/etc/os-release), so -updates, -security, -backports and other archives are not read (they change
often and would rebuild the corpora for a handful of packages). Of that release: every
component's Packages file for the native architecture (`dpkg --print-architecture`; arch-all
packages are in it) and its Translation-LANG files. Files are read as apt stored them: plain,
.gz, .xz, .lzma, .bz2 (Python), .lz4, .zst (`apt-helper cat-file`, else lz4cat / zstdcat).
A Translation file that the Release file lists but that is not on disk is an error naming it and
the apt-get command that fetches it.

Texts. The synopsis is the description's first line, whitespace collapsed. The long description
(the continuation lines) becomes the document: each line's leading and trailing whitespace is
stripped, Debian's paragraph marker " ." becomes an empty line (runs of empty lines become one),
and line breaks are kept. Words are whitespace-separated tokens of the English text.

Topics (debdesc/):
  * Source package: the Source field without its version (absent: the Package name). Within a
    Packages file a package name counts once (its first stanza).
  * One document per source: among its binary packages whose English long description has at
    least --min-words words (default 15), the one named like the source, else the one with the
    shortest name, ties in name order. Its document is that long description, its query
    (q-<source>) the synopsis, its section that binary's Section without the area prefix
    ("contrib/games" -> games, "non-free-firmware/kernel" -> kernel).
  * Duplicates: a document is dropped when another source's document has the same text, or when
    another document has the same synopsis (both compared with whitespace collapsed, case
    folded); all copies go.
  * Sections with at least --min-section documents (default 80) get a folder; debdesc/all/ holds
    exactly the documents of those folders (each document is in one section folder and in all/).
  * Ids: documents are the source package name (e.g. "zsh"), queries "q-<source>".

Languages (debdesc-lang/):
  * Languages --languages (default en,de,fr,it,ja,ru,da,uk), en first. A source qualifies when
    one of its binary packages with an English long description of at least --min-words words
    has, in every language, a translation (same Description-md5) with a non-empty synopsis and
    long description, the long description differing from the English one (an untranslated copy
    is no language shift); of those binaries, the same preference as above picks one (so when it
    is the binary of debdesc/, en/ holds exactly that document and query). Qualifying sources
    whose translated synopsis or text equals another one's in some language are dropped (all
    copies; collapsed, case folded). The section plays no part.
  * The pool, sorted by id, is shuffled with random.Random(--seed) (default 13, as in
    build_corpora.py) and the first --lang-size (default 1000; all if fewer, with a printed note
    recorded in the manifest) are written in id order: the same ids and query ids in every
    language. The manifest records, per language, how many sources have a usable translation,
    how many have all languages, the pool and how many chosen ids are in debdesc/all/.

Unseen descriptions (debdesc-unseen/): per language, descriptions of sources outside the parallel
pool above, so an update on a debdesc-lang corpus can be measured on documents it never saw (its
own language: does the gain reach new documents; the others: is anything forgotten). A source
qualifies for a language as for the pool but in that language alone (English: its English long
description); translated synopses or texts shared with another qualifying source are dropped (all
copies). Each language's qualifying sources, sorted by id, are shuffled with random.Random(--seed)
and the first --unseen-size (default 500; all if fewer, noted) are written in id order. The
languages are not parallel: each has its own sample.

Idempotent: each MANIFEST.json records the settings, the release (Origin, Suite, Codename,
Version, Date of its Release file; PRETTY_NAME of /etc/os-release) and every input file (its name
without the mirror's host part, size, mtime, the SHA-256 its Release file declares for the
uncompressed index). When both manifests match the current settings and inputs (a file matches
by its declared SHA-256, or by size and mtime if the Release file declares none, so re-fetching
the same index does not rebuild) and every folder is complete, nothing is done (one line, well
under a second). --force rebuilds. Folders are built beside their final place and renamed into
it; folders of sections no longer kept are removed; the manifests are written last. The same
list files and arguments give byte-identical files. Errors exit with status 1 and say what is
missing and how to get it.
"""

import argparse
import bz2
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for build_corpora.write_beir
FORMAT = 1
DEFAULT_LANGUAGES = "en,de,fr,it,ja,ru,da,uk"
APT_HELPER = "/usr/lib/apt/apt-helper"
TOPICS, LANGS, UNSEEN = "debdesc", "debdesc-lang", "debdesc-unseen"
ALL = "all"
FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


class BuildError(Exception):
    pass


def say(msg):
    print(f"debdesc: {msg}", flush=True)


def rel(path):
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def collapse(text):
    return " ".join(text.split())


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- the system and apt's list folder ------------------------------------------------------------

def os_release():
    info = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    k, sep, v = line.strip().partition("=")
                    if sep:
                        info[k] = v.strip().strip('"').strip("'")
            break
        except OSError:
            continue
    return info


def lists_dir():
    try:
        r = run(["apt-config", "shell", "D", "Dir::State::lists/d"])
    except OSError:
        return "/var/lib/apt/lists"
    m = re.match(r"D='(.*)'", r.stdout.strip())
    return m.group(1).rstrip("/") if m and m.group(1) else "/var/lib/apt/lists"


def native_arch():
    try:
        r = run(["dpkg", "--print-architecture"])
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    except OSError:
        pass
    raise BuildError("cannot run `dpkg --print-architecture` (is this a Debian system?)")


def configured_languages():
    """Acquire::Languages as apt is configured (e.g. "environment", "en"; never "none")."""
    try:
        r = run(["apt-config", "dump", "Acquire::Languages"])
    except OSError:
        return []
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r'Acquire::Languages(::)?\s+"([^"]*)";', line.strip())
        if m:
            for v in m.group(2).split(","):
                v = v.strip()
                if v and v != "none" and v not in out:
                    out.append(v)
    return out


def parse_release(path):
    """Header fields and the SHA256 list {path: (sha256, size)} of a Release/InRelease file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        _, _, body = text.partition("\n\n")
        text = body.split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    fields, sums, cur = {}, {}, None
    for line in text.split("\n"):
        if not line.strip():
            continue
        if line[0] in " \t":
            if cur == "SHA256":
                parts = line.split()
                if len(parts) == 3:
                    sums[parts[2]] = (parts[0], int(parts[1]))
            continue
        cur, _, value = line.partition(":")
        fields[cur] = value.strip()
    return fields, sums


INDEX = re.compile(r"^(?P<comp>.+)_(?:binary-(?P<arch>[^_]+)_Packages|i18n_Translation-(?P<lang>[^_.]+))"
                   r"(?P<ext>\.(?:lz4|gz|xz|lzma|bz2|zst))?$")


def strip_host(name):
    """An apt list file name without its first part (the archive's host)."""
    return name.split("_", 1)[1] if "_" in name else name


def discover(args):
    """The selected release(s) and their index files (no decompression: cheap)."""
    ldir = args.lists
    if not os.path.isdir(ldir):
        raise BuildError(f"apt's list folder {ldir} does not exist; run `apt-get update` "
                         "(as root) first")
    names = sorted(os.listdir(ldir))
    releases = []
    for n in names:
        if n.endswith("_InRelease") or (n.endswith("_Release") and n[:-len("Release")] + "InRelease"
                                        not in names):
            fields, sums = parse_release(os.path.join(ldir, n))
            releases.append({"file": n, "prefix": n[:n.rindex("_") + 1], "fields": fields,
                             "sums": sums})
    chosen = [r for r in releases if r["fields"].get("Origin") == args.origin
              and (r["fields"].get("Codename") or r["fields"].get("Suite")) == args.release]
    if not chosen:
        seen = sorted({f"{r['fields'].get('Origin', '?')} {r['fields'].get('Codename', '?')}"
                       for r in releases})
        raise BuildError(
            f"no {args.origin} release with codename {args.release!r} in {ldir} "
            f"(found: {', '.join(seen) or 'no Release files'}); run `apt-get update` (as root), "
            "or choose --origin/--release")
    packages, translations, missing = [], {}, []
    for r in chosen:
        prefix = r["prefix"]
        mine = [n for n in names if n.startswith(prefix)
                and not any(o is not r and len(o["prefix"]) > len(prefix)
                            and n.startswith(o["prefix"]) for o in releases)]
        found = {}
        for n in mine:
            m = INDEX.match(n[len(prefix):])
            if not m:
                continue
            comp = urllib.parse.unquote(m.group("comp")).replace("_", "/")
            if m.group("arch"):
                if urllib.parse.unquote(m.group("arch")) == args.arch:
                    key = ("Packages", comp, None)
                    meta = f"{comp}/binary-{args.arch}/Packages"
                else:
                    continue
            else:
                lang = urllib.parse.unquote(m.group("lang"))
                if lang not in args.languages:
                    continue
                key = ("Translation", comp, lang)
                meta = f"{comp}/i18n/Translation-{lang}"
            if key in found:  # the same index in two compressions: keep the first name
                continue
            path = os.path.join(args.lists, n)
            st = os.stat(path)
            found[key] = {"path": path, "file": strip_host(n), "size": st.st_size,
                          "mtime": datetime.fromtimestamp(int(st.st_mtime), timezone.utc)
                          .strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "sha256": r["sums"].get(meta, (None,))[0], "kind": key[0],
                          "component": comp, "language": key[2], "ext": m.group("ext") or "",
                          "release_date": r["fields"].get("Date")}
        # The components apt fetches (those with a Packages file here), in the Release's order.
        order = r["fields"].get("Components", "").split()
        comps = sorted({k[1] for k in found if k[0] == "Packages"},
                       key=lambda c: (order.index(c) if c in order else len(order), c))
        for comp in comps:
            packages.append(found[("Packages", comp, None)])
            for lang in args.languages:
                if ("Translation", comp, lang) in found:
                    translations.setdefault(lang, []).append(found[("Translation", comp, lang)])
                else:
                    meta = f"{comp}/i18n/Translation-{lang}"
                    if any(p == meta or p.startswith(meta + ".") for p in r["sums"]):
                        missing.append(meta)
    if not packages:
        raise BuildError(f"no Packages file of {args.origin} {args.release} for {args.arch} in "
                         f"{ldir}: run `apt-get update` (as root)")
    return {"releases": chosen, "packages": packages, "translations": translations,
            "missing": missing}


def apt_languages(args):
    langs = list(args.languages)
    for v in configured_languages():
        if v not in langs:
            langs.append(v)
    return ",".join(langs)


def update_command(args):
    return f"apt-get -o Acquire::Languages={apt_languages(args)} update"


def check_complete(args, found):
    if found["missing"]:
        raise BuildError(
            f"missing in {args.lists}: " + ", ".join(found["missing"])
            + " (apt fetches the description files of the languages of Acquire::Languages "
              "only). Fetch them with\n"
              f"    sudo {update_command(args)}\n"
              "or rerun with --update, as `make debdesc` and `make setup` do")
    absent = [lang for lang in args.languages if not found["translations"].get(lang)]
    if absent:
        raise BuildError(
            f"no Translation file for {', '.join(absent)} of {args.origin} {args.release} in "
            f"{args.lists}, and its Release file lists none: leave "
            f"{'that language' if len(absent) == 1 else 'those languages'} out of --languages "
            f"(or try `sudo {update_command(args)}`)")


# --- reading index files ---------------------------------------------------------------------

def read_index(entry):
    path, ext = entry["path"], entry["ext"]
    if ext == "":
        with open(path, "rb") as f:
            data = f.read()
    elif ext == ".gz":
        with gzip.open(path, "rb") as f:
            data = f.read()
    elif ext in (".xz", ".lzma"):
        with lzma.open(path, "rb") as f:
            data = f.read()
    elif ext == ".bz2":
        with bz2.open(path, "rb") as f:
            data = f.read()
    else:
        tools = [[APT_HELPER, "cat-file", path]] if os.access(APT_HELPER, os.X_OK) else []
        tools.append(["lz4cat" if ext == ".lz4" else "zstdcat", path])
        data, errs = None, []
        for cmd in tools:
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except OSError as e:
                errs.append(f"{cmd[0]}: {e.strerror}")
                continue
            if r.returncode == 0:
                data = r.stdout
                break
            errs.append(f"{cmd[0]}: {r.stderr.decode(errors='replace').strip() or r.returncode}")
        if data is None:
            raise BuildError(f"cannot decompress {path} ({'; '.join(errs)}); install apt's "
                             f"helper or the {'lz4' if ext == '.lz4' else 'zstd'} package")
    return data.decode("utf-8", errors="replace")


def stanzas(text, wanted):
    """Yield {field: value} of the wanted fields; a multi-line value keeps its continuation
    lines (each with its leading space) after a newline."""
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        rec, cur = {}, None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if cur is not None:
                    rec[cur] += "\n" + line
                continue
            name, _, value = line.partition(":")
            cur = name if name in wanted else None
            if cur is not None:
                rec[cur] = value.strip()
        if rec:
            yield rec


def split_description(value):
    """(synopsis, long text) of a Description value: first line, continuation lines."""
    first, _, rest = value.partition("\n")
    lines = []
    for line in rest.split("\n") if rest else []:
        s = line.strip()
        lines.append("" if s == "." else s)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return collapse(first), body


def dup_key(text):
    return collapse(text).casefold()


# --- building ------------------------------------------------------------------------------------

def load_packages(found):
    """{source: [(package, section, md5)]} and {md5: (synopsis, body)} from Packages files."""
    sources, english, count = {}, {}, 0
    for entry in found["packages"]:
        seen = set()
        for rec in stanzas(read_index(entry), {"Package", "Source", "Section", "Description",
                                               "Description-md5"}):
            pkg = rec.get("Package")
            if not pkg or pkg in seen:
                continue
            seen.add(pkg)
            count += 1
            src = (rec.get("Source") or pkg).split()[0]
            desc = rec.get("Description", "")
            md5 = rec.get("Description-md5")
            if md5 is None:
                if not desc:
                    continue
                md5 = hashlib.md5((desc + "\n").encode("utf-8")).hexdigest()
            if "\n" in desc:
                english.setdefault(md5, split_description(desc))
            section = (rec.get("Section") or "unknown").split("/")[-1].strip().lower()
            section = re.sub(r"[^a-z0-9.+_-]", "-", section) or "unknown"
            sources.setdefault(src, []).append((pkg, section, md5))
    return sources, english, count


def load_translations(entries, lang, keep=None):
    out = {}
    field = f"Description-{lang}"
    for entry in entries:
        for rec in stanzas(read_index(entry), {"Description-md5", field}):
            md5, desc = rec.get("Description-md5"), rec.get(field)
            if md5 and desc and md5 not in out and (keep is None or md5 in keep):
                out[md5] = split_description(desc)
    return out


def choose_documents(sources, english, min_words):
    """One (source, package, section, md5, synopsis, body) per source; counts of drops."""
    docs, short = [], 0
    for src in sorted(sources):
        ok = []
        for pkg, section, md5 in sources[src]:
            syn, body = english.get(md5, ("", ""))
            if syn and len(body.split()) >= min_words:
                ok.append((pkg != src, len(pkg), pkg, section, md5, syn, body))
        if not ok:
            short += 1
            continue
        _, _, pkg, section, md5, syn, body = min(ok)
        docs.append((src, pkg, section, md5, syn, body))
    bodies, syns = {}, {}
    for d in docs:
        bodies[dup_key(d[5])] = bodies.get(dup_key(d[5]), 0) + 1
        syns[dup_key(d[4])] = syns.get(dup_key(d[4]), 0) + 1
    kept = [d for d in docs if bodies[dup_key(d[5])] == 1 and syns[dup_key(d[4])] == 1]
    stats = {"sources": len(sources), "sources_under_min_words": short,
             "one_per_source": len(docs),
             "dropped_shared_text": sum(1 for d in docs if bodies[dup_key(d[5])] > 1),
             "dropped_shared_synopsis": sum(1 for d in docs if syns[dup_key(d[4])] > 1),
             "eligible": len(kept)}
    return kept, stats


def choose_parallel(sources, trans, languages, min_words):
    """{source: md5} of the sources with a description in every language; counts."""
    covered = {lang: 0 for lang in languages}
    cands = {}
    for src in sorted(sources):
        ok, has = [], set()
        for pkg, _, md5 in sources[src]:
            syn, body = trans["en"].get(md5, ("", ""))
            if not syn or len(body.split()) < min_words:
                continue
            langs = {"en"} | {lang for lang in languages[1:] if md5 in trans[lang]
                              and trans[lang][md5][0] and trans[lang][md5][1].strip()
                              and dup_key(trans[lang][md5][1]) != dup_key(body)}
            has |= langs
            if len(langs) == len(languages):
                ok.append((pkg != src, len(pkg), pkg, md5))
        for lang in has:
            covered[lang] += 1
        if ok:
            cands[src] = min(ok)[3]
    counts = {}
    for lang in languages:
        for md5 in cands.values():
            syn, body = trans[lang][md5]
            for k in ((lang, "s", dup_key(syn)), (lang, "b", dup_key(body))):
                counts[k] = counts.get(k, 0) + 1
    pool = {src: md5 for src, md5 in cands.items()
            if all(counts[(lang, "s", dup_key(trans[lang][md5][0]))] == 1
                   and counts[(lang, "b", dup_key(trans[lang][md5][1]))] == 1
                   for lang in languages)}
    return pool, {"sources_described_per_language": covered,
                  "sources_in_all_languages": len(cands),
                  "dropped_shared_text_or_synopsis": len(cands) - len(pool)}


def choose_unseen(sources, trans, lang, min_words, exclude):
    """{source: md5} of the sources outside `exclude` described in `lang` (see the docstring)."""
    cands = {}
    for src in sorted(sources):
        if src in exclude:
            continue
        ok = []
        for pkg, _, md5 in sources[src]:
            syn, body = trans["en"].get(md5, ("", ""))
            if not syn or len(body.split()) < min_words:
                continue
            if lang != "en":
                t = trans[lang].get(md5)
                if not t or not t[0] or not t[1].strip() or dup_key(t[1]) == dup_key(body):
                    continue
            ok.append((pkg != src, len(pkg), pkg, md5))
        if ok:
            cands[src] = min(ok)[3]
    counts = {}
    for md5 in cands.values():
        syn, body = trans[lang][md5]
        for k in (("s", dup_key(syn)), ("b", dup_key(body))):
            counts[k] = counts.get(k, 0) + 1
    return {src: md5 for src, md5 in cands.items()
            if counts[("s", dup_key(trans[lang][md5][0]))] == 1
            and counts[("b", dup_key(trans[lang][md5][1]))] == 1}


def seeded_sample(ids, size, seed):
    """The first `size` of the sorted `ids` shuffled with random.Random(seed), in id order."""
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    return sorted(ids[i] for i in order[:size])


def write_descriptions(write_beir, out_dir, lang, texts, md5_of, ids):
    """Writes the descriptions of `ids` (texts[md5_of[id]] = (synopsis, body)) as out_dir/lang;
    returns write_beir's info with the mean body length."""
    part = [(i, texts[md5_of[i]][0], texts[md5_of[i]][1]) for i in ids]
    info = write_beir(out_dir, lang, part)
    info["mean_characters"] = round(sum(len(t) for _, _, t in part) / max(1, len(part)), 1)
    return info


def settings(args):
    return {"seed": args.seed, "min_words": args.min_words, "min_section": args.min_section,
            "languages": list(args.languages), "lang_size": args.lang_size,
            "unseen_size": args.unseen_size,
            "origin": args.origin, "release": args.release, "architecture": args.arch}


def input_records(found):
    recs = []
    for e in found["packages"] + [e for lang in sorted(found["translations"])
                                  for e in found["translations"][lang]]:
        recs.append({k: e[k] for k in ("file", "size", "mtime", "sha256", "release_date")})
    return sorted(recs, key=lambda r: r["file"])


def same_inputs(old, new):
    if [r.get("file") for r in old] != [r["file"] for r in new]:
        return False
    for a, b in zip(old, new):
        if a.get("release_date") != b["release_date"]:
            return False
        if b["sha256"] and a.get("sha256") != b["sha256"]:
            return False
        if not b["sha256"] and (a.get("size"), a.get("mtime")) != (b["size"], b["mtime"]):
            return False
    return True


def manifest_ok(path, out_dir, args, inputs):
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return False, None
    if m.get("format") != FORMAT or m.get("settings") != settings(args):
        return False, f"{rel(path)} has other settings"
    if not same_inputs(m.get("inputs") or [], inputs):
        return False, "apt's list files changed"
    for name in m.get("corpora", {}):
        for p in FILES:
            if not os.path.isfile(os.path.join(out_dir, name, p)):
                return False, f"{rel(os.path.join(out_dir, name, p))} is missing"
    return True, None


def remove_stale(out_dir, keep):
    for n in sorted(os.listdir(out_dir)):
        p = os.path.join(out_dir, n)
        if n not in keep and os.path.isdir(p) and (n.startswith((".tmp-", ".old-"))
                                                   or os.path.isfile(os.path.join(p, "corpus.jsonl"))):
            shutil.rmtree(p)
            if not n.startswith("."):
                say(f"removed {rel(p)} (no longer built)")


def write_manifest(path, manifest):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def release_info(found):
    rels = []
    for r in found["releases"]:
        f = r["fields"]
        rels.append({k.lower(): f.get(k) for k in ("Origin", "Label", "Suite", "Codename",
                                                  "Version", "Date")})
    return {"os": os_release().get("PRETTY_NAME"), "releases": rels}


def build(args):
    t0 = time.time()
    topics_dir = os.path.join(os.path.abspath(args.out), TOPICS)
    langs_dir = os.path.join(os.path.abspath(args.out), LANGS)
    unseen_dir = os.path.join(os.path.abspath(args.out), UNSEEN)
    found = discover(args)
    check_complete(args, found)
    inputs = input_records(found)
    tm, lm, um = (os.path.join(d, "MANIFEST.json") for d in (topics_dir, langs_dir, unseen_dir))
    if not args.force:
        checks = [manifest_ok(m, d, args, inputs)
                  for m, d in ((tm, topics_dir), (lm, langs_dir), (um, unseen_dir))]
        if all(ok for ok, _ in checks):
            say(f"{rel(topics_dir)}/, {rel(langs_dir)}/ and {rel(unseen_dir)}/ already built from "
                f"the same apt lists ({args.origin} {args.release}, seed {args.seed}); --force "
                "rebuilds")
            return
        why = next((w for _, w in checks if w), None)
        if why:
            say(f"rebuilding: {why}")
    from build_corpora import write_beir  # the exact file format of the other corpora

    for d, m in ((topics_dir, tm), (langs_dir, lm), (unseen_dir, um)):
        os.makedirs(d, exist_ok=True)
        if os.path.exists(m):
            os.remove(m)
    rel_info = release_info(found)
    say(f"reading {len(found['packages'])} Packages file(s) of {args.origin} {args.release} "
        f"({', '.join(r['version'] or '?' for r in rel_info['releases'])}) from {args.lists}")
    sources, english, n_packages = load_packages(found)
    md5s = {m for binaries in sources.values() for _, _, m in binaries}
    english_tr = load_translations(found["translations"]["en"], "en", md5s)
    n_english = len(english_tr)
    for k, v in english_tr.items():
        english.setdefault(k, v)
    say(f"{n_packages} packages from {len(sources)} sources; {n_english} English descriptions")

    docs, stats = choose_documents(sources, english, args.min_words)
    by_section = {}
    for d in docs:
        by_section.setdefault(d[2], []).append(d)
    if ALL in by_section:
        raise BuildError(f"an archive section is named {ALL!r}, which collides with {ALL}/")
    kept = sorted(s for s in by_section if len(by_section[s]) >= args.min_section)
    small = {s: len(by_section[s]) for s in sorted(by_section) if s not in kept}
    all_docs = sorted((d for s in kept for d in by_section[s]), key=lambda d: d[0])

    manifest = {"format": FORMAT, "builder": "scripts/build_debdesc.py",
                "settings": settings(args), "release": rel_info, "inputs": inputs,
                "counts": dict(packages=n_packages, english_descriptions=n_english, **stats,
                               sections=len(by_section), sections_kept=len(kept),
                               documents=len(all_docs)),
                "small_sections": small, "corpora": {}}
    sizes = []
    for name in kept + [ALL]:
        part = all_docs if name == ALL else by_section[name]
        info = write_beir(topics_dir, name, [(d[0], d[4], d[5]) for d in part])
        manifest["corpora"][name] = info
        if name != ALL:
            sizes.append(info["documents"])
    remove_stale(topics_dir, set(manifest["corpora"]))
    sizes.sort()
    say(f"wrote {rel(topics_dir)}/: {len(kept)} sections of {sizes[0]} to {sizes[-1]} documents "
        f"(median {sizes[len(sizes) // 2]}), {len(all_docs)} in {ALL}/; "
        f"{sum(small.values())} documents of {len(small)} sections under {args.min_section} left out")

    # Languages: one translated description per source, the same sources in every language.
    wanted = {m for binaries in sources.values() for _, _, m in binaries
              if len(english.get(m, ("", ""))[1].split()) >= args.min_words}
    trans = {"en": {m: english[m] for m in wanted}}
    for lang in args.languages[1:]:
        trans[lang] = load_translations(found["translations"][lang], lang, wanted)
    pool, lstats = choose_parallel(sources, trans, args.languages, args.min_words)
    pool_ids = sorted(pool)
    chosen = seeded_sample(pool_ids, args.lang_size, args.seed)
    notes = []
    if len(chosen) < args.lang_size:
        note = (f"only {len(pool_ids)} source packages have their description in all of "
                f"{','.join(args.languages)}: debdesc-lang has {len(chosen)} per language, not "
                f"{args.lang_size} (choose fewer --languages)")
        say("note: " + note)
        notes.append(note)
    topic_md5 = {d[0]: d[3] for d in all_docs}
    lstats.update(pool=len(pool_ids), chosen=len(chosen),
                  chosen_in_debdesc_all=sum(1 for i in chosen if i in topic_md5),
                  chosen_same_text_as_debdesc=sum(1 for i in chosen
                                                  if topic_md5.get(i) == pool[i]))
    lmanifest = {"format": FORMAT, "builder": "scripts/build_debdesc.py",
                 "settings": settings(args), "release": rel_info, "inputs": inputs,
                 "counts": lstats, "notes": notes, "corpora": {}}
    for lang in args.languages:
        lmanifest["corpora"][lang] = write_descriptions(write_beir, langs_dir, lang, trans[lang], pool, chosen)
    remove_stale(langs_dir, set(lmanifest["corpora"]))
    say(f"wrote {rel(langs_dir)}/: {len(chosen)} parallel descriptions in "
        f"{', '.join(args.languages)} (a seeded sample of the {len(pool_ids)} source packages "
        "described in all of them)")

    umanifest = {"format": FORMAT, "builder": "scripts/build_debdesc.py",
                 "settings": settings(args), "release": rel_info, "inputs": inputs,
                 "counts": {}, "notes": [], "corpora": {}}
    for lang in args.languages:
        upool = choose_unseen(sources, trans, lang, args.min_words, set(pool))
        uids = sorted(upool)
        uchosen = seeded_sample(uids, args.unseen_size, args.seed)
        if len(uchosen) < args.unseen_size:
            note = (f"{lang}: only {len(uids)} sources outside debdesc-lang qualify: "
                    f"{len(uchosen)} written, not {args.unseen_size}")
            say("note: " + note)
            umanifest["notes"].append(note)
        umanifest["counts"][lang] = {"qualifying": len(uids), "chosen": len(uchosen)}
        umanifest["corpora"][lang] = write_descriptions(write_beir, unseen_dir, lang, trans[lang], upool, uchosen)
    remove_stale(unseen_dir, set(umanifest["corpora"]))
    say(f"wrote {rel(unseen_dir)}/: per language up to {args.unseen_size} descriptions of sources "
        "outside debdesc-lang's pool (not parallel)")
    write_manifest(um, umanifest)
    write_manifest(lm, lmanifest)
    write_manifest(tm, manifest)
    say(f"wrote {rel(tm)}, {rel(lm)} and {rel(um)} ({time.time() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "corpora"),
                    help=f"folder that receives {TOPICS}/, {LANGS}/ and {UNSEEN}/ (default data/corpora)")
    ap.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    ap.add_argument("--languages", default=DEFAULT_LANGUAGES,
                    help=f"comma-separated, en first (default {DEFAULT_LANGUAGES})")
    ap.add_argument("--lang-size", type=int, default=1000,
                    help="descriptions per language corpus (default 1000)")
    ap.add_argument("--unseen-size", type=int, default=500,
                    help=f"descriptions per language in {UNSEEN}/ (default 500)")
    ap.add_argument("--min-words", type=int, default=15,
                    help="minimum words of an English long description (default 15)")
    ap.add_argument("--min-section", type=int, default=80,
                    help="minimum documents for a section folder (default 80)")
    ap.add_argument("--lists", default=None, help="apt's list folder (default: Dir::State::lists)")
    ap.add_argument("--origin", default="Debian", help="Origin of the release (default Debian)")
    ap.add_argument("--release", default=None,
                    help="Codename of the release (default VERSION_CODENAME of /etc/os-release)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the manifests match")
    ap.add_argument("--apt-languages", action="store_true",
                    help="print the Acquire::Languages value for `apt-get update` if a needed "
                         "index file is missing, nothing otherwise; build nothing")
    ap.add_argument("--update", action="store_true",
                    help="run that `apt-get update` (root or sudo) when a needed file is missing")
    args = ap.parse_args()
    args.languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    if not args.languages or args.languages[0] != "en" or len(set(args.languages)) != len(
            args.languages):
        ap.error("--languages must start with en and name each language once")
    if args.lang_size < 1 or args.unseen_size < 1 or args.min_section < 1 or args.min_words < 0:
        ap.error("--lang-size, --unseen-size and --min-section must be at least 1, --min-words at "
                 "least 0")
    try:
        args.lists = args.lists or lists_dir()
        args.release = args.release or os_release().get("VERSION_CODENAME")
        if not args.release:
            raise BuildError("/etc/os-release names no VERSION_CODENAME: pass --release CODENAME")
        args.arch = native_arch()
        if args.apt_languages or args.update:
            try:
                found = discover(args)
                need = bool(found["missing"]) or any(not found["translations"].get(lang)
                                                     for lang in args.languages)
            except BuildError:
                need = True  # no lists, or not this release's: an update fetches them
            if args.apt_languages:
                if need:
                    print(apt_languages(args))
                return
            if need:
                cmd = ["apt-get", "-q", "-o", f"Acquire::Languages={apt_languages(args)}",
                       "update"]
                if os.geteuid() != 0:
                    if not shutil.which("sudo"):
                        raise BuildError("need root or sudo to run: " + " ".join(cmd))
                    cmd = ["sudo"] + cmd
                say("fetching apt's description files: " + " ".join(cmd))
                r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
                if r.returncode != 0:
                    raise BuildError("apt-get update failed: "
                                     + ((r.stderr.strip().splitlines() or ["?"])[-1]))
        build(args)
    except (BuildError, OSError) as e:
        print(f"build_debdesc: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
