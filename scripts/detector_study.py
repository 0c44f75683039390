#!/usr/bin/env python3
"""Which query-free signal predicts that a dense retriever misses a document?

The study behind `gradnormir predict`'s default detector. It runs the `gradnormir` binary on the
Debian description corpora (scripts/build_debdesc.py), then analyses its outputs:

- topics: every section of `debdesc/all` inside the one 31,694-document index (the paper's regime
  of a large index); GradNormIR on 20 documents of each of the 20 largest sections;
- languages: the 1,000 parallel descriptions of `debdesc-lang/<lang>`, each its own index;
  GradNormIR on a seeded sample of 20 per language.

Ground truth: each document's rank for its synopsis query (`gradnormir evaluate --per-document`);
a failure is recall@10 < 1. Detectors: GradNormIR (16 positives, 256 tokens, N(d) = N(x) = 100),
its mean InfoNCE loss, the query-free signals of `predict` (density, nearest, pieces per word,
[UNK] and `##` shares), kNN/Mahalanobis/IPQ fitted on data/corpora/reference, and `combined`, a
logistic model of the signals fitted here on TRAINING corpora only:

- training: the 10 of the 20 largest sections at even size rank, and en, de, ru, da;
- held out: the other 10 of the 20 (and, for query-free detectors, the 21 smaller sections),
  and fr, it, ja, uk.

Nothing is chosen on a held-out corpus: the split, the features and the fit are fixed before.
Writes results/detectors/{report.md, study.json, combined.json}; `combined.json` holds the
coefficients that Sources/GradNormIR/Prediction/FailureModelDefault.swift ships.

Usage: scripts/detector_study.py [--work DIR] [--skip-gradnorm] [--analyse-only]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "corpora")
BIN = os.path.join(ROOT, ".build", "release", "gradnormir")
LANGS = ["en", "de", "fr", "it", "ja", "ru", "da", "uk"]
TRAIN_LANGS = ["en", "de", "ru", "da"]
MAX_LENGTH = "256"
PER_CORPUS = 20
FEATURES = ["density", "nearest", "pieces_per_word", "unknown_share", "continuation_share", "log_pieces"]
CHEAP = ["density", "nearest", "pieces_per_word", "unknown_share", "knn", "mahalanobis", "ipq"]


def fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(args, log):
    """Runs the binary; its standard error goes to the log."""
    started = time.time()
    with open(log, "a") as err:
        err.write("$ " + " ".join(args) + "\n")
        err.flush()
        subprocess.run([BIN] + args, check=True, stderr=err, stdout=subprocess.DEVNULL)
    return time.time() - started


def sections():
    root = os.path.join(DATA, "debdesc")
    names = sorted(s for s in os.listdir(root) if s != "all" and os.path.isdir(os.path.join(root, s)))
    ids = {s: [d["_id"] for d in read_jsonl(os.path.join(root, s, "corpus.jsonl"))] for s in names}
    by_size = sorted(names, key=lambda s: (-len(ids[s]), s))
    return by_size, ids


def prepare(work):
    """The documents GradNormIR scores in debdesc/all: 20 per section of the 20 largest (the
    smallest FNV-1a hashes of 'study' + id), in two files: training (even size rank) and held-out."""
    by_size, ids = sections()
    train, held = [], []
    for rank, s in enumerate(by_size[:20]):
        pick = sorted(ids[s], key=lambda i: fnv(b"study\xff" + i.encode()))[:PER_CORPUS]
        (train if rank % 2 == 0 else held).extend(pick)
    chosen = set(train) | set(held)
    all_ids = [d["_id"] for d in read_jsonl(os.path.join(DATA, "debdesc", "all", "corpus.jsonl"))]
    reference = [i for i in sorted(all_ids, key=lambda i: fnv(b"reference\xff" + i.encode())) if i not in chosen][:40]
    for name, rows in [("ids-a.txt", train + reference), ("ids-b.txt", held)]:
        path = os.path.join(work, name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("\n".join(rows) + "\n")
    return by_size, ids


def collect(work, skip_gradnorm):
    """Runs every command the analysis reads (each resumes or is skipped when done)."""
    log = os.path.join(work, "commands.log")
    timing_path = os.path.join(work, "timings.json")
    timings = json.load(open(timing_path)) if os.path.exists(timing_path) else {}
    ref = os.path.join(DATA, "reference")
    corpora = [("all", os.path.join(DATA, "debdesc", "all"))] + [(l, os.path.join(DATA, "debdesc-lang", l)) for l in LANGS]
    for name, folder in corpora:
        index = os.path.join(work, f"index-{name}")
        if not os.path.exists(os.path.join(index, "index.json")):
            timings[f"index/{name}"] = run(["index", "--corpus", folder, "--out", index, "--max-length", MAX_LENGTH], log)
        for det in ["combined", "knn", "mahalanobis", "ipq"]:
            out = os.path.join(work, f"predict-{name}-{det}.jsonl")
            if os.path.exists(out) and f"predict/{name}/{det}" in timings:
                continue
            extra = ["--reference", ref] if det in ("knn", "mahalanobis", "ipq") else []
            timings[f"predict/{name}/{det}"] = run(["predict", "--corpus", folder, "--index", index, "--max-length", MAX_LENGTH,
                                                    "--detector", det, "--out", out] + extra, log)
        truth = os.path.join(work, f"truth-{name}.jsonl")
        if not os.path.exists(truth):
            run(["evaluate", "--dataset", folder, "--index", index, "--max-length", MAX_LENGTH, "--k", "10",
                 "--scores", os.path.join(work, f"predict-{name}-combined.jsonl"), "--per-document", truth], log)
        json.dump(timings, open(timing_path, "w"), indent=1)
    if skip_gradnorm:
        return timings
    scoring = ["--max-length", MAX_LENGTH, "--positives", "16"]
    for part in ["a", "b"]:
        out = os.path.join(work, f"all-{part}.jsonl")
        key = f"score/all/{part}"
        t = run(["score", "--corpus", os.path.join(DATA, "debdesc", "all"), "--index", os.path.join(work, "index-all"),
                 "--ids", os.path.join(work, f"ids-{part}.txt"), "--out", out] + scoring, log)
        timings.setdefault(key, t)
    for l in LANGS:
        out = os.path.join(work, f"lang-{l}.jsonl")
        t = run(["score", "--corpus", os.path.join(DATA, "debdesc-lang", l), "--index", os.path.join(work, f"index-{l}"),
                 "--sample", str(PER_CORPUS), "--out", out] + scoring, log)
        timings.setdefault(f"score/{l}", t)
    json.dump(timings, open(timing_path, "w"), indent=1)
    return timings


# ---------------------------------------------------------------- analysis

def auroc(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return None
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auroc_ci(scores, labels, seed=0, resamples=1000):
    rng = np.random.default_rng(seed)
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    values = []
    for _ in range(resamples):
        i = rng.integers(0, len(scores), len(scores))
        a = auroc(scores[i], labels[i])
        if a is not None:
            values.append(a)
    if not values:
        return None
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def features(row):
    return [row["density"], row["nearest"], row["pieces_per_word"], row["unknown_share"], row["continuation_share"],
            math.log(1 + row["pieces"])]


def fit_logistic(x, y, weights, l2=1e-3, iterations=50):
    """Weighted L2-regularised logistic regression by Newton's method on standardised features."""
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ beta))
        g = z.T @ (weights * (p - y)) + l2 * np.r_[0, beta[1:]]
        h = (z * (weights * p * (1 - p))[:, None]).T @ z + l2 * np.diag(np.r_[0, np.ones(len(beta) - 1)])
        step = np.linalg.solve(h, g)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return {"features": FEATURES, "means": mean.tolist(), "scales": scale.tolist(), "weights": beta[1:].tolist(),
            "intercept": float(beta[0]), "l2": l2}


def combined_score(model, row):
    x = np.asarray(features(row))
    z = model["intercept"] + float(np.dot(model["weights"], (x - model["means"]) / np.asarray(model["scales"])))
    return 1 / (1 + math.exp(-z))


def load(work, by_size, section_ids):
    """One row per document: corpus, split, label, ranks and every detector's score."""
    section_of = {}
    for s, ids in section_ids.items():
        for i in ids:
            section_of.setdefault(i, s)
    top = by_size[:20]
    train_sections = set(top[0::2])
    gradnorm = {}
    for name in ["all-a", "all-b"] + [f"lang-{l}" for l in LANGS]:
        path = os.path.join(work, name + ".jsonl")
        if os.path.exists(path):
            corpus = "all" if name.startswith("all") else name[5:]
            for r in read_jsonl(path):
                gradnorm[(corpus, r["_id"])] = (r["gradnorm"], r["loss"])
    reference_ids = set(open(os.path.join(work, "ids-a.txt")).read().split()[len(top[0::2]) * PER_CORPUS:])
    rows = []
    for name in ["all"] + LANGS:
        truth = {r["_id"]: r for r in read_jsonl(os.path.join(work, f"truth-{name}.jsonl"))}
        preds = {det: {r["_id"]: r for r in read_jsonl(os.path.join(work, f"predict-{name}-{det}.jsonl"))}
                 for det in ["combined", "knn", "mahalanobis", "ipq"]}
        for i, base in preds["combined"].items():
            if i not in truth:
                continue
            t = truth[i]
            ranks = [r for r in t["ranks"]]
            row = {k: base[k] for k in ["density", "nearest", "pieces_per_word", "unknown_share", "continuation_share", "pieces"]}
            row.update({"id": i, "recall10": t["recall"], "fail": t["recall"] < 1,
                        "recall100": float(np.mean([r is not None and r <= 100 for r in ranks]))})
            for det in ["knn", "mahalanobis", "ipq"]:
                row[det] = preds[det][i]["ood_score"]
            g = gradnorm.get(("all" if name == "all" else name, i))
            row["gradnormir"], row["loss"] = (g if g else (None, None))
            if name == "all":
                s = section_of.get(i, "?")
                row["corpus"] = "topic/" + s
                row["kind"] = "topic"
                row["train"] = s in train_sections
                row["top20"] = s in top
                row["reference"] = i in reference_ids
            else:
                row["corpus"] = "lang/" + name
                row["kind"] = "language"
                row["train"] = name in TRAIN_LANGS
                row["top20"] = True
                row["reference"] = False
            rows.append(row)
    return rows


def analyse(work, out_dir, timings, by_size, section_ids):
    rows = load(work, by_size, section_ids)
    train = [r for r in rows if r["train"]]
    # Each training corpus weighs the same in the fit, whatever its size.
    count = {}
    for r in train:
        count[r["corpus"]] = count.get(r["corpus"], 0) + 1
    x = np.array([features(r) for r in train])
    y = np.array([float(r["fail"]) for r in train])
    w = np.array([1000.0 / count[r["corpus"]] for r in train])
    model = fit_logistic(x, y, w)
    model["training_corpora"] = sorted(count)
    model["training_documents"] = len(train)
    for r in rows:
        r["combined"] = combined_score(model, r)
    detectors = ["combined", "gradnormir", "loss"] + CHEAP
    held = [r for r in rows if not r["train"]]
    report = {"model": model, "documents": len(rows), "detectors": {}, "corpora": {}}

    # Per-document AUROC, pooled over held-out corpora: all documents (query-free detectors) and
    # the GradNormIR sample (every detector on the same documents).
    sample = [r for r in held if r["gradnormir"] is not None]
    for det in detectors:
        entry = {}
        for label, subset in [("all", held), ("sample", sample)]:
            s = [r for r in subset if r.get(det) is not None]
            if not s:
                continue
            entry[label] = {"n": len(s), "failures": int(sum(r["fail"] for r in s)),
                            "auroc": auroc([r[det] for r in s], [r["fail"] for r in s]),
                            "ci": auroc_ci([r[det] for r in s], [r["fail"] for r in s])}
        report["detectors"][det] = entry

    # Per corpus: recall, AUROC and the OOD ratio at the threshold = mean score of the
    # in-distribution reference scored in the same regime: for the sections (one 31,694-document
    # index) 40 random documents of that index (`ids-a.txt`'s last 40), for the languages (each
    # its own 1,000-document index) the English descriptions, debdesc-lang/en.
    references = {"topic": [r for r in rows if r["reference"]], "language": [r for r in rows if r["corpus"] == "lang/en"]}
    thresholds = {}
    for kind, reference in references.items():
        thresholds[kind] = {}
        for det in detectors:
            v = [r[det] for r in reference if r.get(det) is not None]
            thresholds[kind][det] = float(np.mean(v)) if v else None
    report["thresholds"] = thresholds
    names = sorted({r["corpus"] for r in rows})
    for c in names:
        docs = [r for r in rows if r["corpus"] == c]
        e = {"documents": len(docs), "train": docs[0]["train"], "kind": docs[0]["kind"], "top20": docs[0]["top20"],
             "recall10": float(np.mean([r["recall10"] for r in docs])),
             "recall100": float(np.mean([r["recall100"] for r in docs])),
             "failures": int(sum(r["fail"] for r in docs)), "detectors": {}}
        for det in detectors:
            s = [r for r in docs if r.get(det) is not None]
            t = thresholds[e["kind"]][det]
            if len(s) < 5 or t is None:
                continue
            v = [r[det] for r in s]
            e["detectors"][det] = {"n": len(s), "mean": float(np.mean(v)), "threshold": t,
                                   "ood_ratio": float(np.mean([x > t for x in v])),
                                   "auroc": auroc(v, [r["fail"] for r in s])}
        report["corpora"][c] = e

    # The paper's decision on the GradNormIR sample of each held-out corpus: documents above
    # GradNormIR's threshold are flagged; every other detector flags as many (its top scores).
    # DRR = mean recall@10 of the flagged documents (one query each), against all scored ones.
    drr = {det: {"flagged": 0, "recall_sum": 0.0} for det in detectors}
    drr_all = []
    for c in names:
        if report["corpora"][c]["train"]:
            continue
        docs = [r for r in rows if r["corpus"] == c and r["gradnormir"] is not None]
        t = thresholds[report["corpora"][c]["kind"]]["gradnormir"]
        if not docs or t is None:
            continue
        budget = sum(r["gradnormir"] > t for r in docs)
        drr_all += [r["recall10"] for r in docs]
        for det in detectors:
            if any(r.get(det) is None for r in docs):
                continue
            top = sorted(docs, key=lambda r: -r[det])[:budget]
            drr[det]["flagged"] += len(top)
            drr[det]["recall_sum"] += sum(r["recall10"] for r in top)
    report["drr"] = {"all": float(np.mean(drr_all)) if drr_all else None, "scored": len(drr_all),
                     "flagged": {d: (v["recall_sum"] / v["flagged"] if v["flagged"] else None, v["flagged"]) for d, v in drr.items()}}
    # AUROC against recall@100 < 1 on the same sample.
    report["auroc100"] = {}
    for det in detectors:
        s100 = [r for r in sample if r.get(det) is not None]
        report["auroc100"][det] = (auroc([r[det] for r in s100], [r["recall100"] < 1 for r in s100]),
                                   int(sum(r["recall100"] < 1 for r in s100)))

    def spearman(det, corpora, key):
        pts = [(report["corpora"][c]["detectors"][det][key], report["corpora"][c]["recall10"]) for c in corpora
               if det in report["corpora"][c]["detectors"]]
        if len(pts) < 4:
            return None, len(pts)
        rho = stats.spearmanr([p[0] for p in pts], [p[1] for p in pts]).statistic
        return float(rho), len(pts)

    # Inside each held-out corpus: the mean (and range) of the per-corpus AUROCs, with the 95%
    # interval of each corpus's AUROC.
    report["within"] = {}
    for det in detectors:
        per = []
        for c in names:
            e = report["corpora"][c]
            if e["train"] or det not in e["detectors"] or e["detectors"][det]["auroc"] is None:
                continue
            docs = [r for r in rows if r["corpus"] == c and r.get(det) is not None]
            e["detectors"][det]["ci"] = auroc_ci([r[det] for r in docs], [r["fail"] for r in docs], resamples=300)
            per.append(e["detectors"][det]["auroc"])
        report["within"][det] = (float(np.mean(per)), float(min(per)), float(max(per)), len(per)) if per else None
    held_top = [c for c in names if not report["corpora"][c]["train"] and report["corpora"][c]["top20"]]
    held_all = [c for c in names if not report["corpora"][c]["train"]]
    report["spearman"] = {}
    for det in detectors:
        report["spearman"][det] = {
            "held_top20_ood_ratio": spearman(det, held_top, "ood_ratio"),
            "held_top20_mean": spearman(det, held_top, "mean"),
            "held_all_ood_ratio": spearman(det, held_all, "ood_ratio"),
            "held_all_mean": spearman(det, held_all, "mean"),
        }
    report["timings"] = timings
    os.makedirs(out_dir, exist_ok=True)
    json.dump(model, open(os.path.join(out_dir, "combined.json"), "w"), indent=1)
    json.dump(report, open(os.path.join(out_dir, "study.json"), "w"), indent=1)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(render(report, detectors, held_top, held_all))
    print(render(report, detectors, held_top, held_all))
    return model


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def render(report, detectors, held_top, held_all):
    lines = ["# Detector study (held-out corpora only)", "",
             f"{report['documents']} documents with ground truth; combined fitted on "
             f"{report['model']['training_documents']} documents of {len(report['model']['training_corpora'])} training corpora.", "",
             "## Per document: AUROC against recall@10 < 1, held-out corpora pooled", "",
             "| detector | all: n (failures) | all: AUROC [95% CI] | GradNormIR sample: n (failures) | sample: AUROC [95% CI] |",
             "|---|---|---|---|---|"]
    for det in detectors:
        e = report["detectors"][det]
        cells = []
        for label in ["all", "sample"]:
            if label in e:
                x = e[label]
                ci = x["ci"] or [None, None]
                cells += [f"{x['n']} ({x['failures']})", f"{fmt(x['auroc'])} [{fmt(ci[0])}, {fmt(ci[1])}]"]
            else:
                cells += ["–", "–"]
        lines.append(f"| {det} | " + " | ".join(cells) + " |")
    d = report["drr"]
    lines += ["", f"On the GradNormIR sample of the held-out corpora ({d['scored']} documents; mean recall@10 = DRR of all "
              f"{fmt(d['all'], 3)}): DRR of the documents each detector flags at GradNormIR's budget (its flags above the "
              "threshold, corpus by corpus; lower = the flagged documents are the ones the retriever misses), and AUROC "
              "against recall@100 < 1.", "",
              "| detector | flagged | DRR flagged | AUROC recall@100 (failures) |", "|---|---|---|---|"]
    for det in detectors:
        v, n = d["flagged"][det]
        a, f = report["auroc100"][det]
        lines.append(f"| {det} | {n} | {fmt(v, 3)} | {fmt(a)} ({f}) |")
    lines += ["", "Inside each held-out corpus (AUROC per corpus, then their mean and range over the corpora; the "
              "per-corpus 95% intervals are in study.json):", "", "| detector | corpora | mean AUROC | min | max |", "|---|---|---|---|---|"]
    for det in detectors:
        w = report["within"][det]
        if w:
            lines.append(f"| {det} | {w[3]} | {fmt(w[0])} | {fmt(w[1])} | {fmt(w[2])} |")
    lines += ["", "## Per corpus: Spearman with recall@10 over held-out corpora", "",
              f"Threshold of each detector: the mean of its scores on the in-distribution reference of the same regime "
              f"(sections: 40 random documents of debdesc/all; languages: debdesc-lang/en). Top-20 held out: {len(held_top)} corpora "
              f"(10 sections + 4 languages; GradNormIR scored); all held out: {len(held_all)}.", "",
              "| detector | ρ(OOD ratio), top-20 | ρ(mean), top-20 | ρ(OOD ratio), all held out | ρ(mean), all held out |",
              "|---|---|---|---|---|"]
    for det in detectors:
        s = report["spearman"][det]
        cells = [f"{fmt(v[0])} (n={v[1]})" for v in [s["held_top20_ood_ratio"], s["held_top20_mean"],
                                                    s["held_all_ood_ratio"], s["held_all_mean"]]]
        lines.append(f"| {det} | " + " | ".join(cells) + " |")
    lines += ["", "## Per corpus (held out first)", "",
              "| corpus | split | docs | recall@10 | recall@100 | " + " | ".join(f"{d} OOD / AUROC" for d in ["combined", "gradnormir", "density", "knn"]) + " |",
              "|---|---|---|---|---|---|---|---|---|"]
    order = sorted(report["corpora"], key=lambda c: (report["corpora"][c]["train"], c))
    for c in order:
        e = report["corpora"][c]
        cells = []
        for d in ["combined", "gradnormir", "density", "knn"]:
            x = e["detectors"].get(d)
            cells.append("–" if x is None else f"{fmt(x['ood_ratio'])} / {fmt(x['auroc'])}")
        lines.append(f"| {c} | {'train' if e['train'] else 'held out'} | {e['documents']} | {fmt(e['recall10'], 3)} | "
                     f"{fmt(e['recall100'], 3)} | " + " | ".join(cells) + " |")
    lines += ["", "## Cost (wall seconds of each command, 2 cores shared)", ""]
    for k, v in sorted(report["timings"].items()):
        lines.append(f"- {k}: {v:.1f} s")
    return "\n".join(lines) + "\n"


def run_json(args, log):
    with open(log, "a") as err:
        err.write("$ " + " ".join(args) + "\n")
        err.flush()
        r = subprocess.run([BIN] + args, check=True, stderr=err, stdout=subprocess.PIPE)
    return json.loads(r.stdout)


def selection_study(work, out_dir, by_size, candidates):
    """`gradnormir select` between two checkpoints on held-out corpora (each its own index):
    correct when the recommended one has the higher recall@10, counted where they differ by > 2
    points."""
    log = os.path.join(work, "commands.log")
    top = by_size[:20]
    # The held-out languages and the held-out sections of the 20 largest with fewer than 1,000
    # documents (the larger ones would take an hour more on 2 cores).
    sizes = {s: sum(1 for _ in open(os.path.join(DATA, "debdesc", s, "corpus.jsonl"))) for s in top[1::2]}
    corpora = ([os.path.join("debdesc-lang", l) for l in LANGS if l not in TRAIN_LANGS]
               + [os.path.join("debdesc", s) for s in top[1::2] if sizes[s] < 1000])
    path = os.path.join(work, "selection.json")
    done = json.load(open(path)) if os.path.exists(path) else {}
    for c in corpora:
        if c in done:
            continue
        folder = os.path.join(DATA, c)
        recall = {m: run_json(["recall", "--dataset", folder, "--k", "10", "--model", m], log)["recall"] for m in candidates}
        started = time.time()
        sel = run_json(["select", "--corpus", folder, "--reference", os.path.join(DATA, "reference"),
                        "--out", os.path.join(work, "select-" + c.replace("/", "-"))]
                       + sum([["--model", m] for m in candidates], []), log)
        done[c] = {"recall": recall, "recommended": sel["recommended"], "seconds": time.time() - started,
                   "candidates": [{k: x[k] for k in ["model", "ood_ratio", "threshold", "mean_score"]} for x in sel["candidates"]]}
        json.dump(done, open(path, "w"), indent=1)
    lines = ["", "## Selecting a retriever (`gradnormir select`, combined detector, 10% false alarms on data/corpora/reference)", "",
             "| corpus | " + " | ".join(f"recall@10 {os.path.basename(m)}" for m in candidates) + " | " +
             " | ".join(f"OOD ratio {os.path.basename(m)}" for m in candidates) + " | recommended | best by recall | counted |",
             "|---" * (3 + 2 * len(candidates)) + "|---|"]
    right = counted = 0
    for c, e in done.items():
        best = max(e["recall"], key=e["recall"].get)
        spread = max(e["recall"].values()) - min(e["recall"].values())
        ratios = {x["model"]: x["ood_ratio"] for x in e["candidates"]}
        count = spread > 0.02
        if count:
            counted += 1
            right += e["recommended"] == best
        lines.append(f"| {c} | " + " | ".join(fmt(e["recall"][m], 3) for m in candidates) + " | "
                     + " | ".join(fmt(ratios[m], 3) for m in candidates)
                     + f" | {os.path.basename(e['recommended'])} | {os.path.basename(best)} | {'yes' if count else 'no (≤ 2 points)'} |")
    lines += ["", f"Selection accuracy: {right} of {counted} corpora where recall@10 differs by more than 2 points."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "selection.md"), "w") as f:
        f.write(text)
    print(text)


def write_default(model, path):
    """Writes the Swift file that ships the fitted coefficients as `FailureModel.default`."""
    def arr(v):
        return "[" + ", ".join(repr(float(x)) for x in v) + "]"
    names = model["training_corpora"]
    corpora = "\n    /// ".join(", ".join(names[i:i + 7]) + ("," if i + 7 < len(names) else ".") for i in range(0, len(names), 7))
    text = f"""// Written by scripts/detector_study.py --write-default; do not edit by hand.
extension FailureModel {{
    /// Fitted (weighted, L2 {model['l2']}) on {model['training_documents']} documents of the training corpora only, with
    /// all-MiniLM-L6-v2 at 256 tokens:
    /// {corpora}
    public static let `default` = FailureModel(
        means: {arr(model['means'])},
        scales: {arr(model['scales'])},
        weights: {arr(model['weights'])},
        intercept: {float(model['intercept'])!r})
}}
"""
    with open(path, "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default=os.path.join(ROOT, "results", "detectors", "work"))
    p.add_argument("--out", default=os.path.join(ROOT, "results", "detectors"))
    p.add_argument("--skip-gradnorm", action="store_true", help="query-free detectors only (minutes instead of hours)")
    p.add_argument("--analyse-only", action="store_true")
    p.add_argument("--write-default", action="store_true",
                   help="write the fitted coefficients into Sources/GradNormIR/Prediction/FailureModelDefault.swift")
    p.add_argument("--selection", action="store_true", help="also run `gradnormir select` between the two checkpoints")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    by_size, section_ids = prepare(a.work)
    if a.analyse_only:
        timing_path = os.path.join(a.work, "timings.json")
        timings = json.load(open(timing_path)) if os.path.exists(timing_path) else {}
    else:
        subprocess.run(["swift", "build", "-c", "release", "--product", "gradnormir"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        timings = collect(a.work, a.skip_gradnorm)
    model = analyse(a.work, a.out, timings, by_size, section_ids)
    if a.write_default:
        write_default(model, os.path.join(ROOT, "Sources", "GradNormIR", "Prediction", "FailureModelDefault.swift"))
    if a.selection:
        models = [os.path.join(ROOT, "models", m) for m in ["all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2"]]
        selection_study(a.work, a.out, by_size, models)


if __name__ == "__main__":
    sys.exit(main())
