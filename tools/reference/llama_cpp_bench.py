#!/usr/bin/env python3
"""llama.cpp's CPU speed on Gemma 3 270M (GGUF Q4_K_M): the yardstick for ehrqa's own engine.

Measures, with n_threads=2 (prefill and decode), n_ctx=8192+64, n_batch=n_ubatch=512:
  - prefill tokens/s for a 1,000-token and an 8,000-token prompt (BOS included; the KV cache is
    cleared before each; one untimed warm-up run first),
  - decode tokens/s for 64 greedy tokens (argmax of llama.cpp's last logits, one token per
    llama_decode) right after each of those prompts,
  - peak RSS of the process (resource.getrusage ru_maxrss),
and prints one JSON line. Prompts are the first N tokens (tokenized by llama.cpp, BOS first) of
fixtures/bench/prompt.txt, deterministic clinical text that `ehrqa bench generate` uses too
(repeated if short). Flash attention is off (llama-cpp-python's default).

Usage (from the repository root, after scripts/setup --reference-tools has fetched the model):

    ~/.cache/ehrqa/venv-llamacpp/bin/python tools/reference/llama_cpp_bench.py \
        [--model PATH] [--threads 2] [--prompts 1000,8000] [--decode 64] [--prompt-file PATH]

Takes about a minute on 2 cores. Numbers depend on machine load; "loadavg_before" in the
output says how busy the machine was when the run started, and each "*_others_cpus" how many
CPUs other processes kept busy during that phase (from /proc/stat): anything well above 0 on a
2-core machine means the number is not trustworthy (llama.cpp's OpenMP threads spin-wait, so
even light contention slows decode many times over).
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

DEFAULT_MODEL = os.path.join(
    os.environ.get("EHRQA_CACHE", os.path.expanduser("~/.cache/ehrqa")),
    "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf",
)


DEFAULT_PROMPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "bench", "prompt.txt")


def prompt_tokens(llm, n: int, text: str):
    ids = llm.tokenize(text.encode(), add_bos=True, special=False)
    while len(ids) < n:
        ids += llm.tokenize(text.encode(), add_bos=False, special=False)
    return ids[:n]


def _busy_s():
    """Seconds of CPU time used by the whole machine (from /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait
    except (OSError, ValueError):
        return None


class Phase:
    """Times a block and estimates how many CPUs other processes kept busy during it."""

    def __enter__(self):
        self.busy0, self.self0, self.t0 = _busy_s(), sum(os.times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
        busy1, self1 = _busy_s(), sum(os.times()[:2])
        self.others_cpus = (
            None if busy1 is None else round(max(0.0, (busy1 - self.busy0) - (self1 - self.self0)) / self.s, 2)
        )


def last_logits(llm):
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def prefill(llm, ids):
    llm.reset()
    with Phase() as p:
        llm.eval(ids)
    return p


def decode(llm, n):
    with Phase() as p:
        for _ in range(n):
            nxt = int(np.argmax(last_logits(llm)))
            llm.eval([nxt])
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", default="1000,8000")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--prompt-file", default=DEFAULT_PROMPT)
    args = ap.parse_args()
    with open(args.prompt_file, encoding="utf-8") as f:
        text = f.read()
    sizes = [int(x) for x in args.prompts.split(",")]

    import llama_cpp

    loadavg = os.getloadavg()
    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=max(sizes) + 192 + args.decode,
        n_batch=512,
        n_ubatch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        seed=0,
        verbose=False,
    )
    load_s = time.perf_counter() - t

    prefill(llm, prompt_tokens(llm, 256, text))  # warm-up (page in weights, allocate buffers)

    out = {
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(args.model),
        "threads": args.threads,
        "n_ctx": llm.n_ctx(),
        "n_batch": 512,
        "flash_attn": False,
        "load_s": round(load_s, 3),
    }
    for n in sizes:
        ids = prompt_tokens(llm, n, text)
        p = prefill(llm, ids)
        out[f"prefill_{n}_tok_s"] = round(n / p.s, 1)
        out[f"prefill_{n}_s"] = round(p.s, 3)
        out[f"prefill_{n}_others_cpus"] = p.others_cpus
        p = decode(llm, args.decode)
        out[f"decode_{args.decode}_after_{n}_tok_s"] = round(args.decode / p.s, 1)
        out[f"decode_{args.decode}_after_{n}_others_cpus"] = p.others_cpus
        print(f"{n}: prefill {out[f'prefill_{n}_tok_s']} tok/s, decode {out[f'decode_{args.decode}_after_{n}_tok_s']} tok/s", file=sys.stderr)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["loadavg_before"] = [round(x, 2) for x in loadavg]
    out["cpu"] = platform.processor() or platform.machine()
    out["system_info"] = llama_cpp.llama_print_system_info().decode().strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
