#!/usr/bin/env python3
"""Compares ehrqa builds' ingest by alternating them, so that a machine whose load changes by
the minute slows each build alike.

    python3 tools/bench_alternate.py RUNS LABEL=BINARY [LABEL=BINARY ...] -- PATH [PATH ...]

Each round runs every build once: `BINARY --data-dir FRESH bench ingest --runs 1 --format json
PATH...` under `/usr/bin/time`, in a fresh temporary data directory. Prints, per build, the
rate's best and median (`best_resources_per_sec` of each run), the smallest wall time, the
user+system CPU (minimum and median) and the median peak resident size.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def run_once(binary, paths):
    data = tempfile.mkdtemp(prefix="ehrqa-bench-")
    try:
        p = subprocess.run(
            ["/usr/bin/time", "-f", "TIME %e %U %S %M", binary, "--data-dir", data,
             "bench", "ingest", "--runs", "1", "--format", "json", *paths],
            capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    times = [line for line in p.stderr.splitlines() if line.startswith("TIME ")][-1].split()
    wall, user, system, rss_kb = float(times[1]), float(times[2]), float(times[3]), int(times[4])
    rate = json.loads(p.stdout)["best_resources_per_sec"]
    return rate, wall, user + system, rss_kb / 1024


def main(argv):
    if "--" not in argv or len(argv) < 4:
        sys.exit(__doc__)
    cut = argv.index("--")
    runs, builds, paths = int(argv[1]), [b.split("=", 1) for b in argv[2:cut]], argv[cut + 1:]
    for label, binary in builds:
        if not os.access(binary, os.X_OK):
            sys.exit(f"{label}: {binary} is not an executable")
    results = {label: [] for label, _ in builds}
    for _ in range(runs):
        for label, binary in builds:
            results[label].append(run_once(binary, paths))
    for label, rows in results.items():
        rates, walls, cpus, rss = zip(*rows)
        print(f"{label}: rate best {max(rates):,.0f} median {statistics.median(rates):,.0f} resources/s"
              f" | wall min {min(walls):.2f} s | CPU min {min(cpus):.2f} median {statistics.median(cpus):.2f} s"
              f" | peak RSS median {statistics.median(rss):.0f} MiB")


if __name__ == "__main__":
    main(sys.argv)
