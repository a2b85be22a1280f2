#!/usr/bin/env python3
"""ehrqa's model engine against llama.cpp, in one run: the same GGUF, prompts, thread count and
greedy decoding, then a table of both speeds, their ratio, and peak memory.

Runs `ehrqa bench generate --format json` (release build) and tools/reference/llama_cpp_bench.py
one after the other (each in its own process, so peak memory is each engine's own), twice, in
alternation, and keeps each engine's better run: the machine is shared, and a run disturbed by
other work is slower, never faster.

Usage (repository root, after scripts/setup --reference-tools and `cargo build --release`):

    ~/.cache/ehrqa/venv-llamacpp/bin/python tools/reference/bench_vs_llama_cpp.py \
        [--prompts 1000,8000] [--decode 64] [--threads 2] [--rounds 2] [--json OUT]
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def run_ehrqa(prompts, decode):
    out = subprocess.run(
        [os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/ehrqa/target")), "release/ehrqa"), "bench", "generate", "--format", "json",
         "--prompt-tokens", prompts, "--decode", str(decode)],
        check=True, capture_output=True, text=True,
    ).stdout
    doc = json.loads(out)
    runs = {r["prompt_tokens"]: r for r in doc["runs"]}
    return {
        "prefill": {n: r["prefill_tokens_per_sec"] for n, r in runs.items()},
        "decode": {n: r["decode_tokens_per_sec"] for n, r in runs.items()},
        "peak_mb": doc["peak_rss_mb"],
    }


def run_llama(prompts, decode, threads):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools/reference/llama_cpp_bench.py"),
         "--prompts", prompts, "--decode", str(decode), "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    doc = json.loads(out)
    sizes = [int(x) for x in prompts.split(",")]
    return {
        "prefill": {n: doc[f"prefill_{n}_tok_s"] for n in sizes},
        "decode": {n: doc[f"decode_{decode}_after_{n}_tok_s"] for n in sizes},
        "peak_mb": doc["peak_rss_mib"] * 1024 * 1024 / 1e6,
    }


def best(runs):
    keys = runs[0]["prefill"].keys()
    return {
        "prefill": {n: max(r["prefill"][n] for r in runs) for n in keys},
        "decode": {n: max(r["decode"][n] for r in runs) for n in keys},
        "peak_mb": max(r["peak_mb"] for r in runs),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default="1000,8000")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads != 2:
        print("ehrqa uses every core; compare on a machine with --threads cores", file=sys.stderr)
    ours, theirs = [], []
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        ours.append(run_ehrqa(args.prompts, args.decode))
        theirs.append(run_llama(args.prompts, args.decode, args.threads))
    a, b = best(ours), best(theirs)
    rows = []
    for n in a["prefill"]:
        rows.append((f"prefill, {n}-token prompt (tokens/s)", a["prefill"][n], b["prefill"][n]))
    for n in a["decode"]:
        rows.append((f"decode after {n} tokens (tokens/s)", a["decode"][n], b["decode"][n]))
    print("| measure | ehrqa | llama.cpp | ratio |\n| --- | ---: | ---: | ---: |")
    for name, x, y in rows:
        print(f"| {name} | {x:.1f} | {y:.1f} | {x / y:.2f} |")
    print(f"| peak memory (MB) | {a['peak_mb']:.0f} | {b['peak_mb']:.0f} | {a['peak_mb'] / b['peak_mb']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ehrqa": ours, "llama_cpp": theirs}, f, indent=1)


if __name__ == "__main__":
    main()
