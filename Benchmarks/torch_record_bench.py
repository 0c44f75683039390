#!/usr/bin/env python3
"""PyTorch competitor for the Swift bench: seconds per GradNormIR record (forward + backward).

A record is 6 sequences (1 query + 1 positive + 4 negatives) of exactly T tokens each:
[CLS] + T-2 deterministic ids spread over the vocabulary + [SEP], batched as one [6, T] tensor
(no padding, so no attention mask). Per record: zero the gradients (set to None), forward in eval
mode (no dropout), mean pooling over the T tokens, cosine scores of the query against the 5
passages divided by the temperature 0.05, InfoNCE (cross-entropy with target 0), backward
(autograd, float32), and the global L2 gradient norm over every encoder parameter except
embeddings.position_embeddings.weight (requires_grad False; the checkpoint's unused pooler is not
loaded). Same math as scripts/make_gradnorm_fixture.py, with the model of scripts/torch_bert.py.

For every thread count (torch.set_num_threads) and length: 2 warm-up records, then `reps` timed
repetitions of `records-per-rep` records each; seconds_per_record = median over the repetitions of
(repetition time / records-per-rep).

With --shapes, records whose 6 sequences have different lengths are also timed, run as the
authors' code runs them: padded with [PAD] to the longest sequence, with a key-padding mask and
mean pooling over the real tokens.

With --serve, nothing runs until asked: the bench interleaves its own repetitions with PyTorch's
(A B A B …, same records) by writing one JSON request per line on stdin,
    {"threads": t, "lengths": [6 ints], "warmup": n}
and reading one JSON line back per request,
    {"seconds": s, "loss": l, "grad_norm": g}
(n untimed records first — 0 if absent — then one timed record; the record padded with a mask when
its lengths differ). "ready" is printed once the model is loaded; end of input ends the process.

With --memory T, one record of 6 x T tokens runs on 1 thread and the process prints its own peak
resident set (model load included) as {"tokens", "peak_rss_mb", "loss", "grad_norm"}.

Usage (from the package root):
    python3 Benchmarks/torch_record_bench.py --model models/all-MiniLM-L6-v2 \\
        --lengths 64,128,256,512 --threads 1,2 --reps 5 [--records-per-rep 1] \\
        [--shapes 40/60/200/35/90/128,...] [--attention sdpa|explicit]
Prints one JSON object on stdout:
    {"torch": version, "attention": ..., "reps": ..., "records_per_rep": ...,
     "results": [{"threads", "tokens" or "shape" (+ "padded_tokens"), "seconds_per_record", "all",
                  "loss", "grad_norm"}, ...]}
("all": every repetition's seconds per record; "loss"/"grad_norm": of the last timed record.)
Progress goes to stderr. Needs torch (2.13.0+cpu was used), tokenizers and safetensors; never a
dependency of the Swift build, tests or bench.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from torch_bert import POSITION_EMBEDDINGS, Bert, info_nce, mean_pool  # noqa: E402

SEQUENCES = 6  # query + positive + 4 negatives
TAU = 0.05
CLS, SEP = 101, 102
FIRST_REAL_ID = 999  # ids below are [PAD], [unusedN], [UNK], [CLS], [SEP], [MASK]
WARMUP = 2


def record_ids(T, vocab):
    """[6, T] int64: [CLS] + T-2 ids spread over the vocabulary (different per sequence) + [SEP]."""
    ids, _ = shaped_record_ids([T] * SEQUENCES, vocab)
    return ids


def shaped_record_ids(lengths, vocab):
    """A record whose sequence i has lengths[i] tokens (same ids as record_ids for equal lengths),
    padded with [PAD] = 0 to the longest: ([6, Tmax] int64, [6, Tmax] bool mask or None)."""
    span = vocab - FIRST_REAL_ID
    tmax = max(lengths)
    ids = torch.zeros(len(lengths), tmax, dtype=torch.int64)
    mask = torch.zeros(len(lengths), tmax, dtype=torch.bool)
    for i, T in enumerate(lengths):
        body = [FIRST_REAL_ID + (j * 7919 + i * 104729 + 17) % span for j in range(T - 2)]
        ids[i, :T] = torch.tensor([CLS] + body + [SEP], dtype=torch.int64)
        mask[i, :T] = True
    return ids, (None if all(T == tmax for T in lengths) else mask)


def run_record(bert, params, ids, attention, mask=None):
    """One record: returns (loss, global gradient norm) as floats. With a mask, the record is a
    padded batch (key-padding mask, mean pooling over real tokens), as the authors' code runs it."""
    for p in params:
        p.grad = None  # zero_grad(set_to_none=True)
    _, last = bert.forward(ids, mask, attention=attention)
    pooled = mean_pool(last, mask)  # (6, C): mean over each sequence's real tokens
    loss, _ = info_nce(pooled[0], pooled[1:], TAU)
    loss.backward()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                 for p in params]))
    return loss.item(), norm.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"),
                    help="BERT checkpoint folder")
    ap.add_argument("--lengths", default="64,128,256,512", help="tokens per sequence, comma list")
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma list")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per configuration")
    ap.add_argument("--records-per-rep", type=int, default=1, help="records per repetition")
    ap.add_argument("--shapes", default="",
                    help="variable-length records, comma list of 6 slash-separated lengths "
                         "(e.g. 40/230/90/150/60/180), run padded to their longest with a mask")
    ap.add_argument("--attention", choices=("sdpa", "explicit"), default="sdpa",
                    help="scaled_dot_product_attention (default) or explicit softmax attention")
    ap.add_argument("--serve", action="store_true",
                    help="answer timing requests on stdin, one JSON line each (see above)")
    ap.add_argument("--memory", type=int, metavar="T",
                    help="run one record of 6 x T tokens on 1 thread and print its peak memory (see above)")
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",") if x]
    threads = [int(x) for x in args.threads.split(",") if x]
    assert args.reps >= 1 and args.records_per_rep >= 1

    bert = Bert(args.model)
    bert.set_trainable(frozen=(POSITION_EMBEDDINGS,))
    params = [p for p in bert.w.values() if p.requires_grad]
    assert not bert.p(POSITION_EMBEDDINGS).requires_grad
    vocab = bert.p("embeddings.word_embeddings.weight").shape[0]
    for T in lengths:
        assert 2 <= T <= bert.max_pos, T

    if args.serve:
        return serve(bert, params, vocab, args.attention)
    if args.memory:
        assert 2 <= args.memory <= bert.max_pos, args.memory
        torch.set_num_threads(1)
        loss, norm = run_record(bert, params, record_ids(args.memory, vocab), args.attention)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps({"tokens": args.memory, "peak_rss_mb": peak, "loss": loss, "grad_norm": norm}))
        return 0

    shapes = [[int(x) for x in sh.split("/")] for sh in args.shapes.split(",") if sh]
    for sh in shapes:
        assert len(sh) == SEQUENCES and all(2 <= T <= bert.max_pos for T in sh), sh

    def timed(ids, mask):
        for _ in range(WARMUP):
            run_record(bert, params, ids, args.attention, mask)
        times = []
        for r in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(args.records_per_rep):
                loss, norm = run_record(bert, params, ids, args.attention, mask)
            times.append((time.perf_counter() - t0) / args.records_per_rep)
        return statistics.median(times), times, loss, norm

    results = []
    for t in threads:
        torch.set_num_threads(t)
        for T in lengths:
            med, times, loss, norm = timed(record_ids(T, vocab), None)
            print(f"threads {t} tokens {T}: {med:.4f} s/record (median of {args.reps}; "
                  f"loss {loss:.4f}, grad norm {norm:.4f})", file=sys.stderr, flush=True)
            results.append({"threads": t, "tokens": T, "seconds_per_record": med, "all": times,
                            "loss": loss, "grad_norm": norm})
        for sh in shapes:
            ids, mask = shaped_record_ids(sh, vocab)
            med, times, loss, norm = timed(ids, mask)
            name = "/".join(map(str, sh))
            print(f"threads {t} shape {name}: {med:.4f} s/record (median of {args.reps}; "
                  f"loss {loss:.4f}, grad norm {norm:.4f})", file=sys.stderr, flush=True)
            results.append({"threads": t, "shape": name, "padded_tokens": SEQUENCES * max(sh),
                            "seconds_per_record": med, "all": times, "loss": loss, "grad_norm": norm})

    json.dump({"torch": torch.__version__, "attention": args.attention, "reps": args.reps,
               "records_per_rep": args.records_per_rep, "sequences": SEQUENCES,
               "temperature": TAU, "results": results}, sys.stdout)
    sys.stdout.write("\n")


def serve(bert, params, vocab, attention):
    """The --serve loop: one timed record per request line (see the module's docstring)."""
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        lengths = [int(x) for x in req["lengths"]]
        assert len(lengths) == SEQUENCES and all(2 <= T <= bert.max_pos for T in lengths), lengths
        if torch.get_num_threads() != int(req["threads"]):
            torch.set_num_threads(int(req["threads"]))
        ids, mask = shaped_record_ids(lengths, vocab)
        for _ in range(int(req.get("warmup", 0))):
            run_record(bert, params, ids, attention, mask)
        t0 = time.perf_counter()
        loss, norm = run_record(bert, params, ids, attention, mask)
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "loss": loss, "grad_norm": norm}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
