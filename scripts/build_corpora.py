#!/usr/bin/env python3
"""Build real BEIR-style corpora from Debian packages (Python 3 standard library only).

Fetches eight Debian packages WITHOUT installing them (`apt-get download` into
data/.cache/debs/, then `dpkg-deb -x` into a temporary folder that is removed afterwards) and
writes one BEIR folder per source under data/corpora/:

    <name>/corpus.jsonl      {"_id", "title", "text"}   (title is "" for every document)
    <name>/queries.jsonl     {"_id", "text"}
    <name>/qrels/test.tsv    query-id <TAB> corpus-id <TAB> score   (header line, score 1)

    name       package         source                                   query -> document
    foldoc     dict-foldoc     usr/share/dictd/foldoc.{index,dict.dz}   headword -> definition
    jargon     dict-jargon     usr/share/dictd/jargon.*                 headword -> definition
    vera       dict-vera       usr/share/dictd/vera.*                   acronym  -> expansion(s)
    elements   dict-elements   usr/share/dictd/elements.*               element  -> facts
    devil      dict-devil      usr/share/dictd/devil.*                  headword -> definition
    wordnet    dict-wn         usr/share/dictd/wn.*                     headword -> glosses
    perlfaq    perl-doc        usr/share/perl/*/pod/perlfaq1-9.pod      question -> answer
    pythonfaq  python3.11-doc  usr/share/doc/python3.11/html/_sources/faq/*.rst.txt

plus reference/ (in-distribution FAQ documents for calibrating the threshold, see below) and
MANIFEST.json (counts, mean words, package versions, seed, sizes, SHA-256 of every file).

Dictionaries (dictd: NAME.index lines `headword TAB offset TAB length`, offset and length in
base-64 digits A-Z a-z 0-9 + /, into the uncompressed NAME.dict.dz, which is gzip-readable):
  * Index lines whose headword starts with "00database" / "00-database" (metadata) are dropped.
  * Each definition starts with its head: the first line (jargon, wordnet, vera, elements); all
    leading lines before the first blank or indented line (foldoc, which lists aliases there, e.g.
    "exclamation mark / ! / excl / shriek"); or, for devil, whose head shares the first line
    ("ABASEMENT, n.  A decent ..."), the leading words and commas of the first line without
    lower-case letters (except "or"), up to a double space. The head is removed from the document.
  * The headword (= the query) is the longest index key of the definition that starts the head,
    in the head's own spelling (devil: lower-cased, its heads are all capitals); if none does, the
    first head line.
  * Masking rule: the entry's names are its headword, foldoc's alias head lines, and every index
    key pointing at the definition whose words all appear in the head. Every occurrence of a name
    in the remaining text is replaced by "___", case-insensitively and whole-word, where whole-word
    means: not preceded and not followed by a word character (regex \\w), so names that begin or
    end with punctuation ("C++", "-oid", "(())") work; the name is matched literally (re.escape),
    its inner whitespace matches any whitespace run, and longer names are tried first.
    Inflected forms ("hackers" for "hacker") are not masked.
  * Definitions with the same headword (case-insensitively) are merged into one document, senses
    in file order joined with "; " (a space after final punctuation). The braces of dictd
    cross-reference links {like this} and devil's _italics_ underscores are removed (the text
    inside is kept). Whitespace is collapsed.
  * Eligible: at least 5 words after masking (vera: at least 2); identical texts are kept once
    (the first in headword order).

FAQs: one document per question = the answer; query = the question.
  * perlfaq1-9.pod: a question is an `=head2` line; its answer is every paragraph until the next
    `=head1`/`=head2`/`=cut`. POD formatting codes are resolved (C<..>, B<..>, I<..>, F<..>, S<..>
    -> content; L<text|target> -> text, L<page/"sec"> -> "sec in page"; E<gt>, E<lt>, ... -> the
    character; X<..>, Z<..> -> nothing), `=over`/`=back` dropped, `=item X` kept as X, verbatim
    (indented) code paragraphs kept as plain text.
  * faq/*.rst.txt: a title is a line followed by an underline of one repeated punctuation
    character at least as long; its answer is the body until the next title. Titles with an
    empty answer (page and category titles) are not questions. Roles :x:`text` -> text
    (:x:`title <target>` -> title, ~a.b -> b, :pep:`8` -> PEP 8), ``code`` -> code,
    `text <url>`_ -> text, `text`_ -> text, *emphasis* -> emphasis; `.. ` lines (directives,
    comments, targets) dropped, with their indented content for comments, targets and the
    index/contents/toctree/highlight/testsetup directives; directive option lines dropped;
    "::" -> ":".
  * Eligible: at least 5 words; identical answers kept once.

Ids: documents `<name>-<n>`, queries `q-<name>-<n>`, n = position of the entry among the eligible
entries of its source in a stable order (dictionaries: by headword; FAQs: file order), so ids do
not depend on the seed.

Sampling: the eligible entries of each source are shuffled with a fresh random.Random(seed) and
the first --size are taken (all if fewer); files list documents in id order.

Reference (data/corpora/reference/): FAQ documents of perlfaq and pythonfaq that are NOT in the
sampled perlfaq/pythonfaq corpora (disjoint by text), shuffled with random.Random(seed), first
--reference-size; ids keep their source id (perlfaq-<n>, pythonfaq-<n>). If the FAQ corpora leave
fewer than min(100, --reference-size) documents over, each FAQ corpus is cut (to a prefix of its
own shuffle) so that a quota proportional to its number of eligible entries is left over, the
quotas summing to min(100, --reference-size); this is printed and recorded in MANIFEST.json.

Idempotent: if MANIFEST.json exists with the same seed, size and reference size and every folder
is complete, nothing is done (one line). --force rebuilds. Every folder is built in a temporary
folder next to it and renamed into place; MANIFEST.json is written last. Same packages and
arguments give byte-identical files. Errors exit with status 1 and a message naming the package
or file.
"""

import argparse
import functools
import glob
import gzip
import hashlib
import html.entities
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMAT = 1

# name -> (package, kind, dictd database name / None)
SOURCES = [
    ("foldoc", "dict-foldoc", "dict", "foldoc"),
    ("jargon", "dict-jargon", "dict", "jargon"),
    ("vera", "dict-vera", "dict", "vera"),
    ("elements", "dict-elements", "dict", "elements"),
    ("devil", "dict-devil", "dict", "devil"),
    ("wordnet", "dict-wn", "dict", "wn"),
    ("perlfaq", "perl-doc", "perlfaq", None),
    ("pythonfaq", "python3.11-doc", "pythonfaq", None),
]
FAQS = ("perlfaq", "pythonfaq")
HEAD_STYLE = {"foldoc": "lines", "devil": "devil"}  # others: "first"
MIN_WORDS = {"vera": 2}  # others: 5
DEFAULT_MIN_WORDS = 5
REFERENCE_FLOOR = 100
MASK = "___"


class BuildError(Exception):
    pass


def say(msg):
    print(f"corpora: {msg}", flush=True)


def rel(path):
    try:
        return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path
    except ValueError:
        return path


def collapse(text):
    return " ".join(text.split())


# --- packages ----------------------------------------------------------------------------------

def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def cached_deb(cache, pkg):
    found = [p for p in glob.glob(os.path.join(cache, f"{pkg}_*.deb")) if os.path.isfile(p)]
    if len(found) <= 1:
        return found[0] if found else None

    def version(p):
        return deb_field(p, "Version")

    def cmp(a, b):
        va, vb = version(a), version(b)
        if va == vb:
            return 0
        return -1 if run(["dpkg", "--compare-versions", va, "lt", vb]).returncode == 0 else 1

    return sorted(found, key=functools.cmp_to_key(cmp))[-1]


def deb_field(path, field):
    r = run(["dpkg-deb", "-f", path, field])
    if r.returncode != 0 or not r.stdout.strip():
        raise BuildError(f"cannot read {field} of {rel(path)}: {r.stderr.strip() or 'empty'}")
    return r.stdout.strip()


STALE_LISTS = re.compile(r"Unable to locate package|has no installation candidate|"
                         r"Can't select (candidate )?version|404\s+Not Found")


def apt_download(pkgs, cache):
    """Download pkgs into cache (via a temporary folder, so a .deb appears whole or not at all)."""
    tmp = tempfile.mkdtemp(prefix=".download-", dir=cache)
    try:
        cmd = ["apt-get", "download", "-q"]
        if os.geteuid() == 0:  # the _apt sandbox user cannot write here; avoid apt's warning
            cmd += ["-o", "APT::Sandbox::User=root"]
        r = run(cmd + list(pkgs), cwd=tmp)
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".deb"):
                os.replace(os.path.join(tmp, f), os.path.join(cache, f))
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_packages(pkgs, cache):
    os.makedirs(cache, exist_ok=True)
    debs = {p: cached_deb(cache, p) for p in pkgs}
    missing = [p for p in pkgs if debs[p] is None]
    if missing:
        say(f"downloading {' '.join(missing)} into {rel(cache)}/")
        if shutil.which("apt-get") is None:
            raise BuildError(f"apt-get not found; cannot download {' '.join(missing)}")
        r = apt_download(missing, cache)
        if r.returncode != 0 and STALE_LISTS.search(r.stderr):
            say("apt-get download failed (package lists missing or stale): running apt-get update")
            cmd = ["apt-get", "update", "-q"]
            if os.geteuid() != 0 and shutil.which("sudo"):
                cmd = ["sudo"] + cmd
            u = run(cmd)
            if u.returncode != 0:
                raise BuildError("apt-get update failed (root needed?): "
                                 + (u.stderr.strip().splitlines() or ["?"])[-1])
            still = [p for p in missing if cached_deb(cache, p) is None]
            r = apt_download(still, cache)
        for p in missing:
            debs[p] = cached_deb(cache, p)
        failed = [p for p in missing if debs[p] is None]
        if failed:
            # Name the culprit(s): one package at a time.
            for p in failed:
                rp = apt_download([p], cache)
                debs[p] = cached_deb(cache, p)
                if debs[p] is None:
                    err = [line for line in (rp.stderr or r.stderr).splitlines() if line.strip()]
                    raise BuildError(f"apt-get download {p} failed: "
                                     + (err[-1] if err else f"exit {rp.returncode}"))
    else:
        say(f"all {len(pkgs)} packages cached in {rel(cache)}/")
    return debs


def extract(deb, pkg, into):
    dest = os.path.join(into, pkg)
    r = run(["dpkg-deb", "-x", deb, dest])
    if r.returncode != 0:
        raise BuildError(f"dpkg-deb -x {rel(deb)} failed ({pkg}; delete the file to download it "
                         f"again): {r.stderr.strip()}")
    return dest


def find_paths(root, pattern, pkg):
    hits, seen = [], set()
    # Real paths first, then paths through a symlinked folder (python3.11-doc
    # ships usr/share/doc/python3.11-doc/html -> ../python3.11/html): keep each file once.
    for p in sorted(glob.glob(os.path.join(root, pattern)),
                    key=lambda p: (os.path.realpath(p) != os.path.abspath(p), p)):
        if os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            hits.append(p)
    hits.sort()
    if not hits:
        raise BuildError(f"package {pkg} has no file matching {pattern}")
    return hits


# --- dictd -------------------------------------------------------------------------------------

B64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64 = {c: i for i, c in enumerate(B64_DIGITS)}


def b64num(s):
    n = 0
    for c in s:
        n = n * 64 + B64[c]
    return n


LINK_BRACES = re.compile(r"\{([^{}]{1,200})\}")
DEVIL_ITALICS = re.compile(r"(?<!\w)_([^_\n]+?)_(?!\w)")


def name_regex(name):
    words = name.split()
    return r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"


def mask_regex(text, names):
    """The masking rule as one regex (reference implementation; slow to compile per entry)."""
    names = sorted({collapse(n) for n in names if n.strip()}, key=lambda n: (-len(n), n))
    if not names:
        return text
    pat = re.compile("|".join(name_regex(n) for n in names), re.IGNORECASE)
    return pat.sub(MASK, text)


def is_word(ch):
    return ch.isalnum() or ch == "_"  # what re's \w matches


def mask(text, names):
    """Same result as mask_regex on whitespace-collapsed text, without compiling a regex per
    entry (WordNet has 147k): leftmost match first, at one position the longest name."""
    names = {collapse(n) for n in names if n.strip()}
    low = text.lower()
    if len(low) != len(text) or any(len(n.lower()) != len(n) for n in names):
        return mask_regex(text, names)  # lower() changed a length: positions would not align
    hits = []
    for n in names:
        nl, start = n.lower(), 0
        while True:
            i = low.find(nl, start)
            if i < 0:
                break
            j = i + len(nl)
            if (i == 0 or not is_word(text[i - 1])) and (j == len(text) or not is_word(text[j])):
                hits.append((i, -len(nl)))
            start = i + 1
    out, pos = [], 0
    for i, neg in sorted(hits):
        if i >= pos:
            out += [text[pos:i], MASK]
            pos = i - neg
    out.append(text[pos:])
    return "".join(out)


def split_head(name, text):
    """(head lines, head text, body) of one dictd definition."""
    lines = text.split("\n")
    style = HEAD_STYLE.get(name, "first")
    if style == "lines":
        k = 0
        while k < len(lines) and lines[k].strip() and not lines[k][0].isspace():
            k += 1
        k = max(k, 1)
        head = [collapse(line) for line in lines[:k]]
        return head, " ".join(head), "\n".join(lines[k:])
    if style == "devil":
        # "ABASEMENT, n.  A ...", "BABE or BABY, n.  A ...", "CONFIDANT, CONFIDANTE, n.  ...",
        # "TZETZE (or TSETSE) FLY, n.  ...", "R.I.P.  A careless ...", "I is the first ...":
        # the head is the run of tokens (split at spaces and commas) without lower-case letters
        # (the word "or" excepted), ending at a double space.
        first, end = lines[0], 0
        for m in re.finditer(r"[^\s,]+", first):
            if re.search(r"[a-z]", re.sub(r"^\(?or\)?$", "", m.group())):
                break
            end = m.end()
            if first.startswith(("  ", ",  "), end):
                break
        head = collapse(first[:end])
        rest = first[end:].lstrip(", ")
        return [head], head, "\n".join([rest] + lines[1:])
    head = collapse(lines[0])
    return [head], head, "\n".join(lines[1:])


def headword(head_text, keys, style):
    low = head_text.lower()
    best = None
    for k in keys:
        kk = collapse(k).lower()
        if kk and low.startswith(kk) and (len(low) == len(kk) or not low[len(kk)].isalnum()):
            if best is None or len(kk) > len(best):
                best = kk
    word = head_text[:len(best)] if best else head_text
    return word.lower() if style == "devil" else word


def join_senses(bodies):
    out = bodies[0]
    for b in bodies[1:]:
        out += (" " if out[-1:] in ".;:!?" else "; ") + b
    return out


def parse_dict(name, pkg, root, dbname):
    idx_path = find_paths(root, f"usr/share/dictd/{dbname}.index", pkg)[0]
    dz_path = find_paths(root, f"usr/share/dictd/{dbname}.dict.dz", pkg)[0]
    try:
        with gzip.open(dz_path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise BuildError(f"cannot read {dz_path} ({pkg}): {e}")
    spans = {}  # (offset, length) -> [index keys]
    try:
        with open(idx_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                parts = line.split("\t")
                if len(parts) < 3:
                    raise BuildError(f"{idx_path}:{lineno} ({pkg}): expected 3 tab-separated "
                                     f"fields, got {line!r}")
                key = parts[0]
                if key.startswith(("00database", "00-database")):
                    continue
                try:
                    off, length = b64num(parts[1]), b64num(parts[2])
                except KeyError:
                    raise BuildError(f"{idx_path}:{lineno} ({pkg}): bad base-64 number in "
                                     f"{line!r}")
                if off + length > len(data):
                    raise BuildError(f"{idx_path}:{lineno} ({pkg}): entry {key!r} points past "
                                     f"the end of {os.path.basename(dz_path)}")
                spans.setdefault((off, length), []).append(key)
    except UnicodeDecodeError as e:
        raise BuildError(f"{idx_path} ({pkg}) is not UTF-8: {e}")
    if not spans:
        raise BuildError(f"{idx_path} ({pkg}) has no entries")

    style = HEAD_STYLE.get(name, "first")
    groups = {}  # casefolded headword -> {"word", "names", "bodies"}
    for (off, length) in sorted(spans):
        raw = data[off:off + length]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")  # dict-elements has one Latin-1 entry
        head_lines, head_text, body = split_head(name, text)
        word = headword(head_text, spans[(off, length)], style)
        if not word:
            continue
        head_words = set(head_text.lower().replace(",", " ").replace("(", " ")
                         .replace(")", " ").split())
        names = {word}
        if style == "lines":
            names.update(head_lines)
        names.update(k for k in spans[(off, length)] if set(k.lower().split()) <= head_words)
        body = LINK_BRACES.sub(lambda m: m.group(1), body)  # dictd cross-reference links
        if style == "devil":
            body = DEVIL_ITALICS.sub(lambda m: m.group(1), body)  # _word_ italics
        body = collapse(body)
        g = groups.setdefault(collapse(word).casefold(), {"word": word, "names": set(),
                                                          "bodies": []})
        g["names"].update(names)
        if body and body not in g["bodies"]:
            g["bodies"].append(body)

    entries, seen = [], set()
    min_words = MIN_WORDS.get(name, DEFAULT_MIN_WORDS)
    for key in sorted(groups, key=lambda k: (k, groups[k]["word"])):
        g = groups[key]
        text = collapse(mask(join_senses(g["bodies"]), g["names"]))
        if len(text.split()) < min_words or text in seen:
            continue
        seen.add(text)
        entries.append((collapse(g["word"]), text))
    return entries, len(groups)


# --- perlfaq (POD) -----------------------------------------------------------------------------

POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&",
               "apos": "'"}


def pod_escape(s):
    s = s.strip()
    if s in POD_ESCAPES:
        return POD_ESCAPES[s]
    try:
        if s.lower().startswith("0x"):
            return chr(int(s, 16))
        if s.startswith("0") and len(s) > 1:
            return chr(int(s, 8))
        if s.isdigit():
            return chr(int(s))
    except (ValueError, OverflowError):
        return s
    if s in html.entities.name2codepoint:
        return chr(html.entities.name2codepoint[s])
    return s


def pod_link(s):
    s = s.strip()
    if "|" in s:
        return s.split("|", 1)[0].strip()
    if re.match(r"\w+:[^:\s]\S*$", s):  # URL
        return s
    if "/" in s:
        page, sec = s.split("/", 1)
        sec = sec.strip().strip('"')
        return f"{sec} in {page}" if page.strip() else sec
    return s.strip('"')


CODE_START = re.compile(r"([BCEFILSXZ])(<+)")


def pod_parse(s, i=0, closer=None):
    """Resolve POD formatting codes in s[i:] up to the closer; returns (text, position after)."""
    out = []
    n = len(s)
    while i < n:
        if closer == 1 and s[i] == ">":
            return "".join(out), i + 1
        if isinstance(closer, int) and closer > 1:
            m = re.compile(r"\s+" + ">" * closer).match(s, i)
            if m:
                return "".join(out), m.end()
        m = CODE_START.match(s, i)
        if m:
            letter, brackets = m.group(1), len(m.group(2))
            j = m.end()
            if brackets > 1:
                while j < n and s[j].isspace():
                    j += 1
            inner, i = pod_parse(s, j, brackets)
            if letter == "E":
                out.append(pod_escape(inner))
            elif letter == "L":
                out.append(pod_link(inner))
            elif letter in "XZ":
                pass
            else:
                out.append(inner)
            continue
        out.append(s[i])
        i += 1
    return "".join(out), n  # unterminated code: keep what was read


def pod_inline(s):
    return pod_parse(s)[0]


def pod_text(lines):
    """Answer text of POD lines: resolve codes in ordinary paragraphs, keep verbatim ones."""
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    out = []
    for p in paras:
        if p[0][:1].isspace():
            out.append("\n".join(p))  # verbatim code
        else:
            out.append(pod_inline("\n".join(p)))
    return collapse("\n\n".join(out))


def parse_perlfaq(pkg, root):
    files = find_paths(root, "usr/share/perl/*/pod/perlfaq[1-9].pod", pkg)
    found = [os.path.basename(f) for f in files]
    if len(files) != 9:
        raise BuildError(f"package {pkg}: expected perlfaq1-9.pod, found {found}")
    raw = []
    for path in sorted(files, key=lambda p: int(re.search(r"perlfaq(\d)", p).group(1))):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise BuildError(f"cannot read {path} ({pkg}): {e}")
        q, body, in_cmd = None, [], False
        for line in lines:
            if line.startswith("="):
                cmd = line.split(None, 1)
                word, arg = cmd[0], (cmd[1] if len(cmd) > 1 else "")
                if word in ("=head1", "=head2", "=head3", "=head4", "=cut"):
                    if q is not None:
                        raw.append((q, body))
                    q, body = (arg, []) if word == "=head2" else (None, [])
                elif word == "=item" and q is not None:
                    body += ["", arg, ""]
                # =over, =back, =pod, =encoding, =for ... : dropped
                continue
            if q is not None:
                body.append(line)
        if q is not None:
            raw.append((q, body))
    if len(raw) < 100:
        raise BuildError(f"package {pkg}: only {len(raw)} =head2 questions in perlfaq1-9.pod")
    return [(collapse(pod_inline(q)), pod_text(b)) for q, b in raw], len(raw)


# --- pythonfaq (reST) --------------------------------------------------------------------------

ADORN = re.compile(r"([=\-~^\"'`#*+_.:<>])\1{2,}\s*$")
DROP_CONTENT = {"index", "contents", "toctree", "highlight", "testsetup", "testcleanup",
                "tabularcolumns", "raw", "include", "sectionauthor", "moduleauthor"}


def rst_role(m):
    role, content = m.group(1).split(":")[-1], m.group(2)
    t = re.match(r"(.*?)\s*<([^<>]+)>$", content, re.S)
    if t and t.group(1).strip():
        content = t.group(1)
    else:
        content = content.lstrip("!")
        if content.startswith("~"):
            content = content[1:].rsplit(".", 1)[-1]
    if role == "pep":
        return f"PEP {content}"
    if role == "rfc":
        return f"RFC {content}"
    return content


def rst_inline(s):
    s = re.sub(r":([A-Za-z0-9_.+-]+(?::[A-Za-z0-9_.+-]+)*):`([^`]+)`", rst_role, s)
    s = re.sub(r"``(.+?)``", r"\1", s, flags=re.S)
    s = re.sub(r"`([^`<]*?)\s*<([^`>]+)>`__?", lambda m: m.group(1) or m.group(2), s)
    s = re.sub(r"`([^`]+)`__?", r"\1", s)
    s = re.sub(r"`([^`]+)`", r"\1", s)
    s = re.sub(r"\[(?:#\w*|\d+|\*)\]_", "", s)
    s = re.sub(r"(?<![\w*])\*\*(\S(?:[^*]*?\S)?)\*\*(?![\w*])", r"\1", s)
    s = re.sub(r"(?<![\w*\\])\*(?=[A-Za-z])([^*\n]+?)(?<=\S)\*(?![\w*])", r"\1", s)
    return s


def rst_body(lines):
    out, skip_indent, opts_indent = [], None, None
    for line in lines:
        ind = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not line.strip() or ind > skip_indent:
                continue
            skip_indent = None
        if opts_indent is not None:
            if line.strip() and ind > opts_indent and re.match(r"\s*:[\w-]+:(\s|$)", line):
                continue
            opts_indent = None
        m = re.match(r"(\s*)\.\.(\s|$)", line)
        if m:
            d = re.match(r"\s*\.\.\s+([\w:-]+)::", line)
            if d and d.group(1).split(":")[-1] not in DROP_CONTENT:
                opts_indent = ind  # keep the content (code-block, note, seealso, ...)
            else:
                skip_indent = ind  # comment, target, index/contents/...: drop with content
            continue
        if line.strip() == "::":
            continue
        if line.rstrip().endswith("::"):
            line = re.sub(r"\s*::\s*$", ":", line.rstrip())
            if line.strip() == ":":
                continue
        out.append(line)
    return collapse(rst_inline("\n".join(out)))


def parse_pythonfaq(pkg, root):
    files = find_paths(root, "usr/share/doc/python3*/html/_sources/faq/*.rst.txt", pkg)
    files = [f for f in files if os.path.basename(f) != "index.rst.txt"]
    raw = []
    for path in sorted(files):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise BuildError(f"cannot read {path} ({pkg}): {e}")
        titles, used = [], set()
        for i in range(len(lines) - 1):
            t, u = lines[i], lines[i + 1]
            if (t.strip() and not t[0].isspace() and not ADORN.match(t) and ADORN.match(u)
                    and len(u.strip()) >= len(t.strip()) and i not in used):
                start = i
                if i > 0 and ADORN.match(lines[i - 1]) and lines[i - 1][0] == u[0]:
                    start = i - 1
                titles.append((start, i))
                used.update({start, i, i + 1})
        for k, (start, i) in enumerate(titles):
            end = titles[k + 1][0] if k + 1 < len(titles) else len(lines)
            raw.append((lines[i], [ln for j, ln in enumerate(lines[i + 2:end], i + 2)
                                   if j not in used]))
    out = [(collapse(rst_inline(q)), rst_body(b)) for q, b in raw]
    out = [(q, a) for q, a in out if a]  # page and category titles have no answer
    if len(out) < 50:
        raise BuildError(f"package {pkg}: only {len(out)} questions in faq/*.rst.txt")
    return out, len(raw)


def eligible_faq(pairs):
    entries, seen = [], set()
    for q, a in pairs:
        if len(a.split()) < DEFAULT_MIN_WORDS or a in seen or not q:
            continue
        seen.add(a)
        entries.append((q, a))
    return entries


# --- output ------------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_beir(out_dir, name, docs):
    """docs: [(doc_id, query_text, doc_text)] in order. Atomic: temp folder + rename."""
    final = os.path.join(out_dir, name)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=out_dir)
    try:
        os.makedirs(os.path.join(tmp, "qrels"))
        with open(os.path.join(tmp, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for did, _, text in docs:
                f.write(json.dumps({"_id": did, "title": "", "text": text},
                                   ensure_ascii=False) + "\n")
        with open(os.path.join(tmp, "queries.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for did, q, _ in docs:
                f.write(json.dumps({"_id": "q-" + did, "text": q}, ensure_ascii=False) + "\n")
        with open(os.path.join(tmp, "qrels", "test.tsv"), "w", encoding="utf-8",
                  newline="\n") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for did, _, _ in docs:
                f.write(f"q-{did}\t{did}\t1\n")
        files = {p: sha256(os.path.join(tmp, p))
                 for p in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")}
        os.chmod(tmp, 0o755)
        old = None
        if os.path.lexists(final):
            old = tempfile.mkdtemp(prefix=f".old-{name}-", dir=out_dir)
            os.rename(final, os.path.join(old, name))
        os.rename(tmp, final)
        tmp = None
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    words = [len(t.split()) for _, _, t in docs]
    return {"documents": len(docs), "queries": len(docs), "qrels": len(docs),
            "mean_words": round(sum(words) / len(words), 1) if words else 0.0,
            "files": files}


def manifest_ok(path, out_dir, args):
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError):
        return False, None
    same = (m.get("format") == FORMAT and m.get("seed") == args.seed
            and m.get("size") == args.size and m.get("reference_size") == args.reference_size)
    if not same:
        return False, "MANIFEST.json has other parameters"
    for name in [s[0] for s in SOURCES] + ["reference"]:
        for p in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            if not os.path.isfile(os.path.join(out_dir, name, p)):
                return False, f"{name}/{p} is missing"
    return True, None


def reference_quotas(pools, sizes, floor):
    """Shrink FAQ corpora so that at least `floor` documents are left for the reference."""
    left = sum(pools[n] - sizes[n] for n in pools)
    if left >= floor:
        return sizes, None
    total = sum(pools.values())
    exact = {n: floor * pools[n] / total for n in pools}
    quota = {n: int(exact[n]) for n in pools}
    for n in sorted(pools, key=lambda n: (-(exact[n] - quota[n]), n))[:floor - sum(quota.values())]:
        quota[n] += 1
    new = {n: min(sizes[n], pools[n] - quota[n]) for n in pools}
    note = ("FAQ corpora too small for both the corpora and a reference of "
            f"{floor}: " + ", ".join(f"{n} {sizes[n]} -> {new[n]}" for n in sorted(pools)
                                    if new[n] != sizes[n])
            + f" (reference quota " + ", ".join(f"{n} {quota[n]}" for n in sorted(pools)) + ")")
    return new, note


def build(args):
    out_dir = os.path.abspath(args.out)
    cache = os.path.abspath(args.cache)
    manifest_path = os.path.join(out_dir, "MANIFEST.json")
    if not args.force:
        ok, why = manifest_ok(manifest_path, out_dir, args)
        if ok:
            say(f"{rel(out_dir)} already built (seed {args.seed}, size {args.size}, reference "
                f"{args.reference_size}); --force rebuilds")
            return
        if why:
            say(f"rebuilding: {why}")
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)

    pkgs = [s[1] for s in SOURCES]
    debs = fetch_packages(pkgs, cache)
    versions = {p: deb_field(debs[p], "Version") for p in pkgs}

    work = tempfile.mkdtemp(prefix=".extract-", dir=os.path.dirname(cache))
    eligible, sources = {}, {}
    try:
        for name, pkg, kind, dbname in SOURCES:
            root = extract(debs[pkg], pkg, work)
            if kind == "dict":
                entries, total = parse_dict(name, pkg, root, dbname)
                what = "headwords"
            elif kind == "perlfaq":
                pairs, total = parse_perlfaq(pkg, root)
                entries, what = eligible_faq(pairs), "questions"
            else:
                pairs, total = parse_pythonfaq(pkg, root)
                entries, what = eligible_faq(pairs), "questions"
            shutil.rmtree(root, ignore_errors=True)
            if not entries:
                raise BuildError(f"package {pkg}: no eligible entries for {name}")
            eligible[name] = [(f"{name}-{i}", q, t) for i, (q, t) in enumerate(entries)]
            sources[name] = (pkg, versions[pkg])
            say(f"{name}: {pkg} {versions[pkg]}: {total} {what}, {len(entries)} eligible")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    order = {}
    for name in eligible:
        idx = list(range(len(eligible[name])))
        random.Random(args.seed).shuffle(idx)
        order[name] = idx
    sizes = {name: min(args.size, len(eligible[name])) for name in eligible}
    floor = min(REFERENCE_FLOOR, args.reference_size)
    faq_sizes, note = reference_quotas({n: len(eligible[n]) for n in FAQS},
                                       {n: sizes[n] for n in FAQS}, floor)
    sizes.update(faq_sizes)
    notes = []
    if note:
        say(note)
        notes.append(note)

    manifest = {"format": FORMAT, "seed": args.seed, "size": args.size,
                "reference_size": args.reference_size, "builder": "scripts/build_corpora.py",
                "corpora": {}, "notes": notes}
    chosen_texts = set()
    for name, pkg, _, _ in SOURCES:
        pick = sorted(order[name][:sizes[name]])
        docs = [eligible[name][i] for i in pick]
        if name in FAQS:
            chosen_texts.update(t for _, _, t in docs)
        info = write_beir(out_dir, name, docs)
        manifest["corpora"][name] = dict(
            info, package=pkg, version=versions[pkg], seed=args.seed, size=args.size,
            eligible=len(eligible[name]))
        if sizes[name] < min(args.size, len(eligible[name])):
            manifest["corpora"][name]["size_reduced_to"] = sizes[name]
        say(f"wrote {rel(out_dir)}/{name}: {info['documents']} documents, mean "
            f"{info['mean_words']} words")

    rest = []
    for name in FAQS:
        for i in order[name][sizes[name]:]:
            d = eligible[name][i]
            if d[2] not in chosen_texts:
                rest.append(d)
    rest.sort(key=lambda d: (d[0].split("-")[0], int(d[0].split("-")[1])))
    idx = list(range(len(rest)))
    random.Random(args.seed).shuffle(idx)
    ref = [rest[i] for i in sorted(idx[:args.reference_size])]
    seen, ref_docs = set(), []
    for d in ref:
        if d[2] not in seen:
            seen.add(d[2])
            ref_docs.append(d)
    if len(ref_docs) < floor:
        raise BuildError(f"reference set has only {len(ref_docs)} documents (< {floor})")
    info = write_beir(out_dir, "reference", ref_docs)
    manifest["corpora"]["reference"] = dict(
        info, packages={n: {"package": sources[n][0], "version": sources[n][1]} for n in FAQS},
        from_sources={n: sum(1 for d in ref_docs if d[0].startswith(n + "-")) for n in FAQS},
        seed=args.seed, size=args.reference_size)
    say(f"wrote {rel(out_dir)}/reference: {info['documents']} documents ("
        + ", ".join(f"{n} {manifest['corpora']['reference']['from_sources'][n]}" for n in FAQS)
        + f"), mean {info['mean_words']} words")

    tmp = manifest_path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, manifest_path)
    say(f"wrote {rel(manifest_path)} ({time.time() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=13, help="sampling seed (default 13)")
    ap.add_argument("--size", type=int, default=300, help="documents per corpus (default 300)")
    ap.add_argument("--reference-size", type=int, default=150,
                    help="documents in reference/ (default 150)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "corpora"),
                    help="output folder (default data/corpora)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "data", ".cache", "debs"),
                    help="folder for the downloaded .deb files (default data/.cache/debs)")
    ap.add_argument("--force", action="store_true", help="rebuild even if MANIFEST.json matches")
    args = ap.parse_args()
    if args.size < 1 or args.reference_size < 1:
        ap.error("--size and --reference-size must be at least 1")
    try:
        build(args)
    except BuildError as e:
        print(f"build_corpora: error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"build_corpora: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
