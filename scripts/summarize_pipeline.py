#!/usr/bin/env python3
"""Summarise a `scripts/pipeline.sh` run as a Markdown table (standard library only).

Reads OUT/threshold.json, OUT/<corpus>.detect.json, OUT/<corpus>.evaluate.json and, when present,
OUT/<corpus>.score.log (the `score` command's closing throughput line). Usage:
    python3 scripts/summarize_pipeline.py [OUT]      (default results/pipeline)
"""
import glob
import json
import os
import re
import sys


def fmt(x, d=2):
    return "–" if x is None else f"{x:.{d}f}"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "results/pipeline"
    thr = json.load(open(os.path.join(out, "threshold.json")))
    print(f"Threshold {thr['threshold']:.3f} ({thr['statistic']} of {thr['n']} reference documents; "
          f"sd {thr['std']:.3f}).\n")
    names = ["GradNormIR", "knn", "mahalanobis", "ipq"]
    head = ["corpus", "docs", "scored", "fails", "OOD ratio", "decision", "DRR all", "DRR flagged"]
    head += [f"AUROC {n} (95% CI)" for n in names] + ["docs/s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for ev_path in sorted(glob.glob(os.path.join(out, "*.evaluate.json"))):
        c = os.path.basename(ev_path)[: -len(".evaluate.json")]
        ev = json.load(open(ev_path))
        det = json.load(open(os.path.join(out, f"{c}.detect.json")))
        by = {d["name"]: d for d in ev["detectors"]}
        rate = None
        log = os.path.join(out, f"{c}.score.log")
        if os.path.exists(log):
            m = re.findall(r"\(([0-9.]+) documents/s", open(log).read())
            rate = float(m[-1]) if m else None
        row = [c, str(ev["documents"]), str(ev["evaluated"]), str(ev["failures"]), fmt(det["ood_ratio"]),
               det["decision"], fmt(ev["drr_all"], 3), fmt(by["GradNormIR"]["drr"], 3)]
        for n in names:
            d = by.get(n)
            if d is None or d["auroc"] is None:
                row.append("–")
            else:
                ci = d.get("auroc_ci95")
                row.append(fmt(d["auroc"]) + (f" ({fmt(ci[0])}–{fmt(ci[1])})" if ci else ""))
        row.append(fmt(rate, 3))
        print("| " + " | ".join(row) + " |")
    print("\nDRR flagged: GradNormIR's flagged set; the baselines flag the same number (their DRR is in the JSON).")


if __name__ == "__main__":
    main()
