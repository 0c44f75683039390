#!/usr/bin/env python3
"""`make test`'s cluster check: a local Dask cluster with 2 workers scores a small corpus in 4
shards; the worker running the first shard to start is killed with SIGKILL mid-run; the shard
runs again and the merged file must equal a single-process run byte for byte (and its settings
file too). Exits non-zero, saying why, otherwise."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release", "gradnormir")
CORPUS = os.path.join(ROOT, "Tests", "GradNormIRTests", "Fixtures", "small-corpus")
ARGS = ["--corpus", CORPUS, "--positives", "4", "--negatives", "2", "--max-length", "64", "--threads", "1"]
SHARDS = 4


def fail(message):
    print(f"test_cluster: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    started = time.time()
    from distributed import Client, LocalCluster
    work = tempfile.mkdtemp(prefix="gradnormir-cluster-")
    try:
        single = os.path.join(work, "single.jsonl")
        subprocess.run([BIN, "score"] + ARGS + ["--out", single], check=True, stderr=subprocess.DEVNULL)
        single_seconds = time.time() - started
        out = os.path.join(work, "merged.jsonl")
        killed = {}

        def killer():
            # The first shard to start: kill its worker once it has been running a moment.
            while not killed:
                for k in range(1, SHARDS + 1):
                    attempts = cluster_run.shard_output(out, "score", k, SHARDS) + ".attempts"
                    if os.path.exists(attempts):
                        lines = open(attempts).read().split()
                        if lines:
                            time.sleep(0.4)
                            os.kill(int(lines[0]), signal.SIGKILL)
                            killed[k] = int(lines[0])
                            return
                time.sleep(0.05)

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            seconds = cluster_run.run(client, BIN, "score", ARGS, out, SHARDS, retries=2,
                                      progress=lambda m: print("test_cluster:", m, file=sys.stderr))
        finally:
            client.close()
            cluster.close()
        if not killed:
            fail("no worker was killed (the shards finished before the killer saw one start)")
        (k, pid), = killed.items()
        attempts = open(cluster_run.shard_output(out, "score", k, SHARDS) + ".attempts").read().split("\n")
        runs = [line for line in attempts if line]
        if len(runs) < 2:
            fail(f"shard {k}/{SHARDS} ran {len(runs)} time(s) although its worker (pid {pid}) was killed")
        for suffix in ["", ".meta.json"]:
            a, b = open(single + suffix, "rb").read(), open(out + suffix, "rb").read()
            if a != b:
                fail(f"merged{suffix or ' file'} differs from the single-process run's")
        print(f"test_cluster: ok: 2 workers, {SHARDS} shards; killed the worker (pid {pid}) of shard {k}/{SHARDS}, "
              f"which ran {len(runs)} times; merged file equals the single run ({len(open(single).read().splitlines())} "
              f"documents); single run {single_seconds:.1f} s, shards {', '.join(f'{s:.1f}' for s in seconds.values())} s, "
              f"whole test {time.time() - started:.0f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
