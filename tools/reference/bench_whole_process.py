#!/usr/bin/env python3
"""What a person running the CLI feels: the whole process, load included, of ehrqa against
llama.cpp generating from the same GGUF, prompt and thread count.

For each prompt size it takes the first N tokens of fixtures/bench/prompt.txt (the clinical text
`ehrqa bench generate` and llama_cpp_bench.py use), then runs, one after the other and ROUNDS
times in alternation:
  - `ehrqa generate --model GGUF --raw --max-tokens 64 PROMPT` (release build), and
  - a Python process that imports llama_cpp, loads the same GGUF (n_threads 2) and generates 64
    tokens greedily from the same text (BOS added, as `--raw` adds it),
timing each whole process from start to exit, and keeps each engine's best (the machine is
shared: a disturbed run is slower, never faster). It also checks that both generated the same
text. Usage (repository root, after scripts/setup --reference-tools and `cargo build --release`):

    ~/.cache/ehrqa/venv-llamacpp/bin/python tools/reference/bench_whole_process.py \
        [--prompts 86,1296] [--decode 64] [--rounds 3] [--ehrqa PATH] [--json OUT]
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CACHE = os.environ.get("EHRQA_CACHE", os.path.expanduser("~/.cache/ehrqa"))
MODEL = os.path.join(CACHE, "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))

LLAMA = r"""
import sys
from llama_cpp import Llama
model, prompt_file, n, ctx = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=model, n_ctx=ctx, n_threads=2, n_batch=512, verbose=False)
out = llm.create_completion(open(prompt_file, encoding="utf-8").read(), max_tokens=n,
                            temperature=0.0, top_k=1, repeat_penalty=1.0)
sys.stdout.write(out["choices"][0]["text"])
"""


def prompt_of(n_tokens):
    """The text of the first n_tokens tokens (BOS included) of the bench prompt."""
    from llama_cpp import Llama

    text = open(os.path.join(ROOT, "fixtures/bench/prompt.txt"), encoding="utf-8").read()
    llm = Llama(model_path=MODEL, vocab_only=True, verbose=False)
    while len(llm.tokenize(text.encode(), add_bos=True)) < n_tokens:
        text += "\n" + text
    ids = llm.tokenize(text.encode(), add_bos=True)[1:n_tokens]
    return llm.detokenize(ids).decode("utf-8", errors="ignore")


def timed(cmd):
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", default="86,1296")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ehrqa", default=os.path.join(TARGET, "release/ehrqa"))
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for n in [int(x) for x in args.prompts.split(",")]:
        text = prompt_of(n)
        prompt_file = os.path.join(CACHE, f"bench-prompt-{n}.txt")
        with open(prompt_file, "w", encoding="utf-8") as f:
            f.write(text)
        ehrqa_cmd = [args.ehrqa, "generate", "--model", MODEL, "--raw", "--max-tokens", str(args.decode), text]
        llama_cmd = [sys.executable, "-c", LLAMA, MODEL, prompt_file, str(args.decode), str(n + args.decode + 16)]
        times = {"ehrqa": [], "llama.cpp": []}
        outs = {}
        for _ in range(args.rounds):
            for name, cmd in (("ehrqa", ehrqa_cmd), ("llama.cpp", llama_cmd)):
                t, out = timed(cmd)
                times[name].append(t)
                outs[name] = out
        best = {k: min(v) for k, v in times.items()}
        row = {
            "prompt_tokens": n,
            "ehrqa_s": round(best["ehrqa"], 2),
            "llama_cpp_s": round(best["llama.cpp"], 2),
            "ratio": round(best["llama.cpp"] / best["ehrqa"], 2),
            "same_text": outs["ehrqa"].strip() == outs["llama.cpp"].strip(),
            "runs": {k: [round(x, 2) for x in v] for k, v in times.items()},
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print("| prompt tokens | ehrqa (s) | llama.cpp (s) | ratio (llama.cpp / ehrqa) | same text |")
    print("| ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['prompt_tokens']:,} | {r['ehrqa_s']} | {r['llama_cpp_s']} | {r['ratio']} | {r['same_text']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
