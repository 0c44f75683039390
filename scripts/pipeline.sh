#!/usr/bin/env bash
# The whole GradNormIR path on the default corpora: score → calibrate → detect → evaluate.
#
# Scores a seeded sample of documents of each corpus inside the full corpus index (the paper's
# regime of a large index with few scored documents), calibrates the threshold on the FAQ reference
# (in-distribution for all-MiniLM-L6-v2), flags OOD documents and measures detection accuracy
# against real recall@k with the embedding baselines at equal budget.
#
# Environment: SAMPLE (documents scored per corpus, default 20), REF_SAMPLE (reference documents
# scored, default 40), POSITIVES (default 8; the paper's 16 doubles the time), MAX_LENGTH (default
# 256, all-MiniLM-L6-v2's own max_seq_length; the paper's 512), K (recall depth, default 10: the corpora hold
# 135–300 documents, where recall@100 is almost always 1), GAMMA (default 0.5), OUT (default
# results/pipeline). Interrupted runs resume where they stopped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SAMPLE="${SAMPLE:-20}"; REF_SAMPLE="${REF_SAMPLE:-40}"; POSITIVES="${POSITIVES:-8}"; MAX_LENGTH="${MAX_LENGTH:-256}"
K="${K:-10}"; GAMMA="${GAMMA:-0.5}"; OUT="${OUT:-results/pipeline}"
BIN="$ROOT/.build/release/gradnormir"
CORPORA="${CORPORA:-foldoc jargon vera elements devil wordnet perlfaq pythonfaq}"
mkdir -p "$OUT"
swift build -c release --product gradnormir >/dev/null

echo "== reference: scoring $REF_SAMPLE documents of data/corpora/reference"
"$BIN" score --corpus data/corpora/reference --out "$OUT/reference.scores.jsonl" \
    --sample "$REF_SAMPLE" --positives "$POSITIVES" --max-length "$MAX_LENGTH"
"$BIN" calibrate --scores "$OUT/reference.scores.jsonl" --out "$OUT/threshold.json" >/dev/null
echo "threshold: $(python3 -c "import json;print(json.load(open('$OUT/threshold.json'))['threshold'])")"

for c in $CORPORA; do
    echo "== $c"
    start=$SECONDS
    "$BIN" score --corpus "data/corpora/$c" --out "$OUT/$c.scores.jsonl" --sample "$SAMPLE" --positives "$POSITIVES" --max-length "$MAX_LENGTH" \
        2> >(tee -a "$OUT/$c.score.log" >&2)
    echo "scored in $((SECONDS - start)) s (including what an earlier run already did)"
    "$BIN" detect --scores "$OUT/$c.scores.jsonl" --threshold "$OUT/threshold.json" --gamma "$GAMMA" \
        > "$OUT/$c.detect.json" 2>/dev/null
    "$BIN" evaluate --dataset "data/corpora/$c" --scores "$OUT/$c.scores.jsonl" --k "$K" \
        --threshold "$OUT/threshold.json" --reference data/corpora/reference > "$OUT/$c.evaluate.json"
    python3 -c "import json;d=json.load(open('$OUT/$c.detect.json'));print('OOD ratio', round(d['ood_ratio'],3), 'decision', d['decision'])"
done
echo "results in $OUT/"
python3 scripts/summarize_pipeline.py "$OUT" | tee "$OUT/summary.md"
