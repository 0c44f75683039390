#!/usr/bin/env python3
"""PyTorch competitor for the Swift bench's per-document section: the plain GradNormIR procedure
(METHOD.md, "Per-document score"), one document at a time, as a PyTorch user would write it.

Index: the corpus (BEIR corpus.jsonl, `title + " " + text` when the title is non-empty, else
`text`) is tokenised with the model's tokenizer.json (truncated to --max-length), embedded in
eval mode in batches of 64 documents in corpus order (padded to each batch's longest, key-padding
mask, mean pooling over the real tokens) and L2-normalised.

Per document d (everything below is timed):
1. d's forward in eval mode without gradients; its last-layer token states H (T x C);
2. the positives: H with a Bernoulli mask (p = --dropout, no rescaling) drawn from the engine's
   generator (SplitMix64 seeded with seed XOR d * 0x9E3779B97F4A7C15, one draw per element in
   row-major order, dropped when the draw's top 24 bits / 2^24 < p), mean-pooled over the T
   tokens, searched in the index (inner product); d dropped; the first n_pos;
3. the negatives: N(d) = the top min(100, max(2 n_pos, ceil(n/10)), n - 1) neighbours of d, and for
   each positive x, N(x) = its top min(100, n - 1) neighbours (each a search of its own), minus x,
   the first remaining skipped (the authors' quirk), minus N(d) and d: the first 4; a positive
   with fewer gives no record;
4. each record (d, x, 4 negatives) as one padded batch of 6 with a key mask (the authors' way):
   forward, mean pooling, InfoNCE with cosine scores and temperature 0.05, backward, the global
   L2 gradient norm over every parameter but the position embeddings;
5. the score: the mean record norm (null without a record).
The mask and the depths are the engine's, so on the same index the same records come out (up to
near-ties of float32 scores) and the scores can be compared.

Protocol (--serve; the bench alternates its documents with these, A B A B …): "ready" once the
model is loaded and the corpus tokenised; then one JSON request per stdin line and one answer line:
    {"op": "index", "threads": t}            -> {"seconds": s, "documents": n}
    {"op": "score", "threads": t, "documents": [d, ...]}
        -> {"seconds": s, "scores": [{"index": d, "gradnorm": g or null, "records": r,
                                       "positives": [x, ...]}, ...]}
(documents scored one after another, each with t intra-op threads). End of input ends the process.
Without --serve: --documents 0,5,9 --threads 2 builds the index, scores them and prints one JSON
object like the answers above.

Needs torch (2.13.0+cpu was used), numpy, tokenizers and safetensors; never a dependency of the
Swift build, tests or bench.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
from torch_bert import (POSITION_EMBEDDINGS, Bert, l2_normalize, load_tokenizer, mean_pool,  # noqa: E402
                        pad_batch)
from torch_record_bench import run_record  # noqa: E402

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
INDEX_BATCH = 64


def splitmix64_draws(seed, count):
    """The first `count` outputs of the engine's SplitMix64(seed), as a uint64 array."""
    state = (np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GOLDEN)) + np.uint64(seed)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_keep(seed, d, count, p):
    """The engine's mask for document d: True = kept."""
    if p == 0:
        return np.ones(count, dtype=bool)
    draws = splitmix64_draws((seed ^ ((d * GOLDEN) & MASK64)) & MASK64, count)
    unit = (draws >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return ~(unit < np.float32(p))


def read_corpus(path):
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            title = obj.get("title") or ""
            text = obj.get("text") or ""
            texts.append(title + " " + text if title else text)
    return texts


class Procedure:
    def __init__(self, args):
        self.bert = Bert(args.model)
        self.bert.set_trainable(frozen=(POSITION_EMBEDDINGS,))
        self.params = [p for p in self.bert.w.values() if p.requires_grad]
        tok = load_tokenizer(args.model, args.max_length)
        self.ids = [e.ids for e in tok.encode_batch(read_corpus(args.corpus))]
        self.args = args
        self.embeddings = None
        n = len(self.ids)
        self.exclusion = min(100, max(2 * args.positives, (n + 9) // 10), max(0, n - 1))
        self.candidates = min(100, max(0, n - 1))

    def build_index(self):
        rows = []
        with torch.no_grad():
            for start in range(0, len(self.ids), INDEX_BATCH):
                ids, mask = pad_batch(self.ids[start : start + INDEX_BATCH])
                _, last = self.bert.forward(ids, mask, attention=self.args.attention)
                rows.append(l2_normalize(mean_pool(last, mask)))
        self.embeddings = torch.cat(rows)

    def neighbours(self, vector, depth, exclude):
        """The top `depth` rows by inner product with `vector`, `exclude` (a row or None) dropped."""
        k = min(depth + 1, self.embeddings.shape[0])
        hits = torch.topk(self.embeddings @ vector, k).indices.tolist()
        return [h for h in hits if h != exclude][:depth]

    def score(self, d):
        a = self.args
        ids = self.ids[d]
        if len(ids) <= 2:
            return {"index": d, "gradnorm": None, "records": 0, "positives": []}
        with torch.no_grad():
            _, last = self.bert.forward(torch.tensor([ids], dtype=torch.int64), None, attention=a.attention)
            states = last[0]  # (T, C)
            keep = dropout_keep(a.seed, d, states.numel(), a.dropout)
            masked = states * torch.from_numpy(keep.reshape(states.shape)).to(states.dtype)
            query = masked.sum(dim=0) / states.shape[0]
            positives = self.neighbours(query, a.positives, exclude=d)
            excluded = set(self.neighbours(self.embeddings[d], self.exclusion, exclude=d))
            excluded.add(d)
        norms = []
        for x in positives:
            with torch.no_grad():
                candidates = self.neighbours(self.embeddings[x], self.candidates, exclude=x)
            if a.skip_first and candidates:
                candidates = candidates[1:]
            negatives = [c for c in candidates if c not in excluded][: a.negatives]
            if len(negatives) < a.negatives:
                continue
            batch, mask = pad_batch([ids, self.ids[x]] + [self.ids[c] for c in negatives])
            _, norm = run_record(self.bert, self.params, batch, a.attention, mask)
            norms.append(norm)
        score = sum(norms) / len(norms) if norms and all(math.isfinite(v) for v in norms) else None
        return {"index": d, "gradnorm": score, "records": len(norms), "positives": positives}

    def answer(self, req):
        threads = int(req["threads"])
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if req["op"] == "index":
            t0 = time.perf_counter()
            self.build_index()
            return {"seconds": time.perf_counter() - t0, "documents": len(self.ids)}
        if req["op"] == "score":
            if self.embeddings is None:
                raise ValueError("score before index")
            t0 = time.perf_counter()
            scores = [self.score(int(d)) for d in req["documents"]]
            return {"seconds": time.perf_counter() - t0, "scores": scores}
        raise ValueError(f"unknown op {req['op']!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--corpus", required=True, help="BEIR corpus.jsonl")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--positives", type=int, default=8)
    ap.add_argument("--negatives", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-skip-first", dest="skip_first", action="store_false")
    ap.add_argument("--attention", choices=("sdpa", "explicit"), default="sdpa")
    ap.add_argument("--serve", action="store_true", help="answer requests on stdin (see above)")
    ap.add_argument("--documents", default="0", help="without --serve: comma list of corpus positions")
    ap.add_argument("--threads", type=int, default=1, help="without --serve: torch threads")
    args = ap.parse_args()
    proc = Procedure(args)
    if not args.serve:
        index = proc.answer({"op": "index", "threads": args.threads})
        out = proc.answer({"op": "score", "threads": args.threads,
                           "documents": [int(x) for x in args.documents.split(",") if x]})
        out["index_seconds"] = index["seconds"]
        print(json.dumps(out))
        return 0
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(proc.answer(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
