#!/usr/bin/env python3
"""Run `gradnormir score`, `predict` or `index` as N shards on a Dask cluster, then merge.

Each shard is one task that runs the `gradnormir` binary with `--shard K/N` on a shared
filesystem; a task that fails (or whose worker dies) runs again and the command resumes the
shard's own output. When every shard is done, `gradnormir merge` writes the file (or index
folder) a single run writes, byte for byte.

Why Dask: `distributed` is a pure-Python package (pip, no daemon to install), its local cluster
is the same API as a real one (`dask scheduler` + `dask worker ADDRESS` on each node), and it
retries the tasks of a worker that died without any code here. Ray would serve as well but
brings a large native runtime for what is a list of shell commands.

Examples:
    # a laptop or one machine: 2 local workers
    scripts/cluster_run.py --shards 8 --workers 2 --out scores.jsonl -- \\
        score --corpus data/corpora/debdesc/all --index indexes/all --max-length 256 --sample 400
    # a cluster: paths must be the same on every node (a shared filesystem)
    scripts/cluster_run.py --scheduler tcp://head:8786 --shards 64 --binary /shared/gradnormir \\
        --out /shared/runs/all.jsonl -- score --corpus /shared/data/all --index /shared/indexes/all \\
        --model /shared/models/all-MiniLM-L6-v2 --max-length 256
"""
import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("score", "predict", "index")


def shard_output(out, command, k, n):
    """Where shard K of N writes: OUT.shards/shard-K-of-N.jsonl (a folder for index)."""
    folder = out.rstrip("/") + ".shards"
    name = f"shard-{k}-of-{n}" + ("" if command == "index" else ".jsonl")
    return os.path.join(folder, name)


def _die_with_parent():
    # The shard's process must not outlive its worker: a retried shard would find its output
    # locked by the orphan.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_shard(binary, command, args, out, k, n, log_attempts=True):
    """One task: the binary on shard K of N (resuming its output), on whatever worker runs it."""
    target = shard_output(out, command, k, n)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if log_attempts:
        with open(target + ".attempts", "a") as f:
            f.write(f"{os.getpid()} {time.time():.3f}\n")
    started = time.time()
    r = subprocess.run([binary, command] + args + ["--shard", f"{k}/{n}", "--out", target],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    if r.returncode != 0:
        raise RuntimeError(f"shard {k}/{n}: gradnormir {command} exited with {r.returncode}: {r.stderr.strip()[-2000:]}")
    return k, time.time() - started


def run(client, binary, command, args, out, shards, retries=3, progress=print):
    """Submits the N shards to `client`, waits (printing progress), then merges. Returns the
    seconds each shard took (its last attempt)."""
    from distributed import as_completed
    futures = [client.submit(run_shard, binary, command, args, out, k, shards, retries=retries, pure=False)
               for k in range(1, shards + 1)]
    seconds = {}
    started = time.time()
    for future in as_completed(futures):
        k, t = future.result()
        seconds[k] = t
        progress(f"cluster: shard {k}/{shards} done in {t:.1f} s ({len(seconds)}/{shards}, {time.time() - started:.0f} s elapsed)")
    parts = [shard_output(out, command, k, shards) for k in range(1, shards + 1)]
    r = subprocess.run([binary, "merge", "--out", out] + parts, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"merge failed: {r.stderr.strip()}")
    progress(r.stderr.strip())
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="Everything after -- is passed to the command.")
    p.add_argument("--shards", type=int, required=True, help="N: the number of shards (tasks)")
    p.add_argument("--out", required=True, help="the merged output (file, or folder for index)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="local cluster: worker processes")
    p.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "gradnormir"),
                   help="the gradnormir binary, at the same path on every node")
    p.add_argument("--retries", type=int, default=3, help="extra attempts of a failing shard")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    args = [x for x in a.args if x != "--"]
    if a.shards < 1:
        p.error("--shards must be at least 1")
    if any(x in ("--out", "--shard") for x in args):
        p.error("--out and --shard are set per shard by this driver; give --out before the command")
    if not os.access(a.binary, os.X_OK):
        p.error(f"{a.binary}: not an executable (build it: swift build -c release)")
    from distributed import Client, LocalCluster
    if a.scheduler:
        client = Client(a.scheduler)
    else:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    print(f"cluster: {len(client.scheduler_info()['workers'])} workers, {a.shards} shards of `gradnormir {a.command}`", file=sys.stderr)
    try:
        run(client, a.binary, a.command, args, a.out, a.shards, a.retries, progress=lambda m: print(m, file=sys.stderr))
    except Exception as e:  # a shard failed after its retries, or the merge refused
        print(f"cluster: error: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
