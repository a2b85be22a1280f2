"""Dumps llama.cpp's intermediate tensors for one prompt, to compare an engine with it step by step.

Runs the GGUF model through llama-cpp-python with a `cb_eval` callback that copies every
contiguous f32 tensor the graph computes (named as llama.cpp names them: `attn_norm-0`,
`Qcur-0`, `kq_soft_max-0`, `ffn_out-3`, `result_output`, ...) into an .npz file, key
`<name>#<k>` for the k-th tensor of that name, shaped as ggml's ne reversed.

Usage: ~/.cache/ehrqa/venv-llamacpp/bin/python tools/reference/llama_cpp_dump.py \
           --ids 2,818,6213 [--model PATH] [--out /tmp/llama.npz]
"""

import argparse
import ctypes
import os

import llama_cpp
import numpy as np

DEFAULT_MODEL = os.path.join(
    os.environ.get("EHRQA_CACHE", os.path.expanduser("~/.cache/ehrqa")),
    "models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf",
)


class GgmlTensor(ctypes.Structure):
    """The head of `struct ggml_tensor` (ggml.h, GGML_MAX_DIMS 4, GGML_MAX_SRC 10)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", required=True, help="comma-separated token ids, BOS included")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default="/tmp/llama.npz")
    args = ap.parse_args()
    ids = [int(x) for x in args.ids.split(",")]
    dumped: dict[str, list[np.ndarray]] = {}

    def callback(t, ask, _user):
        if ask:
            return True
        tt = ctypes.cast(t, ctypes.POINTER(GgmlTensor)).contents
        ne = list(tt.ne)
        if tt.type == 0 and tt.data and (tt.nb[1] == 4 * ne[0] or ne[1] == 1):
            n = ne[0] * ne[1] * ne[2] * ne[3]
            a = np.ctypeslib.as_array(ctypes.cast(tt.data, ctypes.POINTER(ctypes.c_float)), shape=(n,))
            dumped.setdefault(tt.name.decode(), []).append(a.copy().reshape(ne[::-1]))
        return True

    cb = llama_cpp.ggml_backend_sched_eval_callback(callback)
    # The same settings as llama_cpp_greedy.py, so the same kernels run.
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=4096, n_threads=2, logits_all=True, seed=0, verbose=False)
    params = llm.context_params
    params.cb_eval = cb
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    batch = llama_cpp.llama_batch_init(len(ids), 0, 1)
    for i, tok in enumerate(ids):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, i, 1, 1
        batch.seq_id[i][0] = 0
    batch.n_tokens = len(ids)
    if llama_cpp.llama_decode(ctx, batch) != 0:
        raise SystemExit("llama_decode failed")
    np.savez(args.out, **{f"{k}#{i}": a for k, arrays in dumped.items() for i, a in enumerate(arrays)})
    print(f"{sum(len(v) for v in dumped.values())} tensors -> {args.out}")


if __name__ == "__main__":
    main()
