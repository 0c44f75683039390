#!/usr/bin/env python3
"""FAISS competitor for the Swift bench's search section: exact inner-product top-k.

Reads a safetensors file holding two F32 tensors, "vectors" (n, d) and "queries" (q, d), adds the
vectors to a `faiss.IndexFlatIP` (exact, brute-force inner product) and searches all queries for
their top k at once, with `threads` OpenMP threads (faiss.omp_set_num_threads; OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS are set to the same count before faiss is imported, for the BLAS it calls).
`warmup` untimed searches, then `reps` timed ones; "seconds" is the median.

Usage (from the package root):
    python3 Benchmarks/faiss_search_bench.py --input FILE.safetensors --k 100 --threads 1 \\
        [--reps 5] [--warmup 1] [--results FILE.json]
Prints one JSON object on stdout:
    {"faiss_version", "faiss_compile_options", "threads", "k", "n", "d", "queries", "seconds",
     "seconds_all", "indices": [[...]], "scores": [[...]]}
("indices"/"scores": (q, k), best first, of the last timed search; with --results they are written
to that file as {"indices", "scores"} and left out of stdout.) Progress goes to stderr.
Needs numpy and faiss (`pip install faiss-cpu`, or Debian's python3-faiss); never a dependency of
the Swift build, tests or library. Exits with status 2 and a message when faiss cannot be imported.
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time


def fail(message, status=1):
    print(f"faiss_search_bench.py: {message}", file=sys.stderr)
    sys.exit(status)


try:
    import numpy as np
except ImportError as e:
    fail(f"cannot import numpy ({e}): `pip install faiss-cpu` installs it with faiss", status=2)


def read_safetensors(path, names):
    """The named F32 tensors of a safetensors file as numpy arrays (little-endian float32).

    Format: an 8-byte little-endian header length, a JSON header mapping each name to
    {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data section), the data.
    """
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError) as e:
        fail(f"cannot read the safetensors header of {path}: {e}")
    base = 8 + length
    out = {}
    for name in names:
        entry = header.get(name)
        if entry is None:
            fail(f"{path} has no tensor '{name}'")
        if entry.get("dtype") != "F32":
            fail(f"tensor '{name}' of {path} is {entry.get('dtype')}, expected F32")
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        count = (end - begin) // 4
        if len(shape) != 2 or shape[0] * shape[1] != count:
            fail(f"tensor '{name}' of {path} has shape {shape} but {count} values (expected a matrix)")
        out[name] = np.fromfile(path, dtype="<f4", count=count, offset=base + begin).reshape(shape)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="safetensors file with 'vectors' (n, d) and 'queries' (q, d)")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--results", help="write indices and scores to this JSON file instead of stdout")
    args = ap.parse_args()
    if args.k < 1 or args.threads < 1 or args.reps < 1 or args.warmup < 0:
        fail("--k, --threads and --reps must be >= 1, --warmup >= 0")

    # Thread counts for OpenMP and the BLAS faiss links, before faiss (and its BLAS) load.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import faiss
    except ImportError as e:
        fail(f"cannot import faiss ({e}): install it with `pip install faiss-cpu` "
             "(or Debian's python3-faiss)", status=2)
    faiss.omp_set_num_threads(args.threads)

    t = read_safetensors(args.input, ["vectors", "queries"])
    vectors, queries = t["vectors"], t["queries"]
    n, d = vectors.shape
    if queries.shape[1] != d:
        fail(f"queries have {queries.shape[1]} components, vectors {d}")
    index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(vectors))  # the index keeps its own copy
    del vectors, t
    queries = np.ascontiguousarray(queries)

    print(f"faiss {faiss.__version__}: IndexFlatIP n={n} d={d}, {len(queries)} queries, k={args.k}, "
          f"{args.threads} thread(s), {args.warmup} warm-up + {args.reps} timed", file=sys.stderr)
    for _ in range(args.warmup):
        index.search(queries, args.k)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        scores, indices = index.search(queries, args.k)
        times.append(time.perf_counter() - t0)

    result = {
        "faiss_version": faiss.__version__,
        "faiss_compile_options": faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else "",
        "threads": args.threads, "k": args.k, "n": n, "d": d, "queries": len(queries),
        "seconds": statistics.median(times), "seconds_all": times,
    }
    hits = {"indices": indices.tolist(), "scores": scores.tolist()}
    if args.results:
        with open(args.results, "w") as f:
            json.dump(hits, f)
        result["results"] = args.results
    else:
        result.update(hits)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
