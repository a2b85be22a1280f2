#!/usr/bin/env python3
"""Reference greedy decoding of Gemma 3 270M (GGUF Q4_K_M) with llama.cpp, for ehrqa's tests.

Writes fixtures/gemma3-270m/llama_cpp_greedy.json: for a fixed list of prompts (short ones in
several registers, plus two longer than the model's 512-token sliding window) it records the
prompt token ids exactly as llama.cpp tokenizes them (BOS added, special tokens not parsed),
then 32 greedily generated token ids ("generated") with, at every step, the top-5 tokens as
[id, raw logit] pairs ("top5"). Decoding is pure argmax over llama.cpp's logits: the script
calls `Llama.eval` and takes `argmax(Llama.scores[last])` itself, so no sampler (temperature,
repetition penalty, top-k/p, min-p, ...) is involved. Generation does not stop at EOS: all 32 steps are recorded.

Usage (from the repository root, after scripts/setup --reference-tools has fetched the model):

    ~/.cache/ehrqa/venv-llamacpp/bin/python tools/reference/llama_cpp_greedy.py \
        [--model ~/.cache/ehrqa/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf] \
        [--out fixtures/gemma3-270m/llama_cpp_greedy.json] [--steps 32]

The venv needs llama-cpp-python (built with -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON
-DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF) and numpy. Runs in about a minute on
2 cores. The output is deterministic for a given llama.cpp build and CPU feature set; logits
can differ in the last bits across builds/ISAs, so consumers should compare ids, and compare
logits with a tolerance (and be lenient where the top-2 margin is tiny).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

DEFAULT_MODEL = os.path.join(
    os.environ.get("EHRQA_CACHE", os.path.expanduser("~/.cache/ehrqa")),
    "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf",
)
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "gemma3-270m", "llama_cpp_greedy.json"
)

SHORT_PROMPTS = [
    ("english", "The quick brown fox jumps over the lazy dog. The capital of France is"),
    ("clinical", "The patient's hemoglobin A1c was"),
    ("clinical_note", "Assessment and plan: 67-year-old male with type 2 diabetes mellitus and hypertension. Continue metformin 1000 mg"),
    ("numeric_list", "1, 2, 3, 5, 8, 13, 21,"),
    ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"),
    ("german", "Der Patient klagt seit drei Tagen über Brustschmerzen und"),
    ("spanish", "La presión arterial del paciente era de"),
]


def clinical_paragraph(i: int) -> str:
    """One deterministic clinical paragraph; the numbers vary with i."""
    sbp = 112 + (i * 7) % 41
    dbp = 64 + (i * 5) % 27
    hr = 58 + (i * 11) % 47
    a1c = 5.4 + ((i * 3) % 37) / 10
    ldl = 71 + (i * 13) % 97
    egfr = 38 + (i * 17) % 61
    wt = 61.5 + ((i * 19) % 83) / 2
    day = 1 + (i * 9) % 28
    month = 1 + (i * 5) % 12
    return (
        f"Visit {i + 1} on 2023-{month:02d}-{day:02d}: the patient returned for follow-up of type 2 "
        f"diabetes and hypertension. Blood pressure was {sbp}/{dbp} mmHg and heart rate {hr} bpm. "
        f"Weight {wt:.1f} kg. Hemoglobin A1c was {a1c:.1f}%, LDL cholesterol {ldl} mg/dL and eGFR "
        f"{egfr} mL/min/1.73m2. Metformin {500 * (1 + i % 4)} mg was continued and lisinopril "
        f"{5 * (1 + i % 6)} mg daily was adjusted. "
    )


def long_prompt(llm, min_tokens: int, question: str) -> str:
    """Concatenate paragraphs until the BOS-tokenized prompt has at least min_tokens tokens."""
    text, i = "", 0
    while True:
        text += clinical_paragraph(i)
        i += 1
        candidate = text + question
        if len(llm.tokenize(candidate.encode(), add_bos=True, special=False)) >= min_tokens:
            return candidate


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def greedy(llm, prompt_ids, steps):
    llm.reset()
    llm.eval(prompt_ids)
    out_ids, top5 = [], []
    for step in range(steps):
        logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        order = np.argsort(-logits, kind="stable")[:5]
        nxt = int(np.argmax(logits))
        assert nxt == int(order[0])
        out_ids.append(nxt)
        top5.append([[int(t), float(logits[t])] for t in order])
        if step + 1 < steps:
            llm.eval([nxt])
    return out_ids, top5


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()

    import llama_cpp

    t0 = time.time()
    llm = llama_cpp.Llama(
        model_path=args.model, n_ctx=4096, n_threads=2, logits_all=True, seed=0, verbose=False
    )
    prompts = list(SHORT_PROMPTS)
    # Both exceed the 512-token sliding window (599 and 1302 tokens; the first is kept under 600
    # because tests/it/gemma3_real.rs expects no prompt length in 600..=1000).
    prompts.append(("long_599", long_prompt(llm, 540, "Summary of the most recent visit: the hemoglobin A1c was")))
    prompts.append(("long_1302", long_prompt(llm, 1300, "Across all visits, the highest blood pressure recorded was")))

    cases = []
    for name, text in prompts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        gen, top5 = greedy(llm, ids, args.steps)
        margins = [step[0][1] - step[1][1] for step in top5]
        cases.append(
            {
                "name": name,
                "prompt": text,
                "prompt_ids": ids,
                "n_prompt_tokens": len(ids),
                "generated": gen,
                "generated_text": llm.detokenize(gen).decode("utf-8", errors="replace"),
                "min_top2_margin": min(margins),
                "top5": top5,
            }
        )
        print(f"{name}: {len(ids)} prompt tokens -> {cases[-1]['generated_text']!r}", file=sys.stderr)

    doc = {
        "description": "Greedy (pure argmax) continuation by llama.cpp via llama-cpp-python; "
        "generated[k] = argmax of the logits after prompt_ids + generated[:k]; "
        "top5[k] = the 5 highest-logit tokens (descending) as [id, raw logit] pairs. "
        "Prompt tokenized with add_bos=True, special=False. EOS does not stop generation.",
        "generator": "tools/reference/llama_cpp_greedy.py",
        "llama_cpp_python": llama_cpp.__version__,
        "gguf_file": os.path.basename(args.model),
        "gguf_sha256": sha256_file(args.model),
        "llama_params": {"n_ctx": 4096, "n_threads": 2, "logits_all": True, "seed": 0},
        "n_vocab": llm.n_vocab(),
        "steps": args.steps,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
