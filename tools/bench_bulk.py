#!/usr/bin/env python3
"""Bulk Data `$export` against per-patient `$everything`, on one real FHIR server.

Starts sekmet-fhir (installed by scripts/setup) on a free loopback port, loads the fixture
patients into it (transactions of PUTs, `urn:uuid:` references rewritten to `Type/id` as a server
resolving them would), then syncs them all into fresh data directories with the same ehrqa
binary, one way after the other, best of N: `ehrqa sync --all` (per patient, `$everything`) and
`ehrqa sync --bulk --all` (`Patient/$export`). Prints resources/s for each and the ratio.

sekmet's artificial hold of each export (`simulator.delay_seconds`, 1 s by default, "to let
clients observe in progress") is set to 0: the export takes what its work takes.

With `--latency MS`, both go through a proxy on loopback that holds each request MS
milliseconds before passing it on (a remote server's round trip; the server's own URLs in its
answers are rewritten to the proxy's, as a server behind a gateway would give them).

    python3 tools/bench_bulk.py [--runs 3] [--latency 0,50,200] [--trace] [--ehrqa PATH] [BUNDLE.json ...]
"""
import argparse
import http.server
import json
import threading
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("EHRQA_CACHE", Path.home() / ".cache/ehrqa"))
DEFAULT_BUNDLES = sorted((ROOT / "fixtures/fhir/synthea").glob("*.json")) + sorted(
    (ROOT / "fixtures/fhir/synthea-java").glob("*.json"))


def ehrqa_binary(given):
    if given:
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR", CACHE / "target"))
    for candidate in (target / "release/ehrqa", ROOT / "target/release/ehrqa"):
        if candidate.exists():
            return str(candidate)
    sys.exit("no release ehrqa binary: cargo build --release (or pass --ehrqa)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing listens on port {port}")


def rewrite(v, urls):
    if isinstance(v, str):
        return urls.get(v, v)
    if isinstance(v, list):
        return [rewrite(x, urls) for x in v]
    if isinstance(v, dict):
        return {k: rewrite(x, urls) for k, x in v.items()}
    return v


def load(base, bundle):
    entries = bundle["entry"]
    urls = {e["fullUrl"]: f'{e["resource"]["resourceType"]}/{e["resource"]["id"]}' for e in entries if "fullUrl" in e}
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for e in entries:
        r = rewrite(e["resource"], urls)
        tx["entry"].append({"resource": r, "request": {"method": "PUT", "url": f'{r["resourceType"]}/{r["id"]}'}})
    req = urllib.request.Request(base, data=json.dumps(tx).encode(), method="POST",
                                 headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        assert resp.status < 300, resp.status


def latency_proxy(upstream, delay):
    """A threaded proxy adding `delay` seconds to every request; returns its base URL."""
    port = free_port()
    own = f"http://127.0.0.1:{port}/fhir"
    passed = ("Accept", "Prefer", "Authorization", "Cache-Control")
    kept = ("Content-Type", "Content-Location", "Retry-After", "X-Progress")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            time.sleep(delay)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            target = upstream + self.path[len("/fhir"):]
            req = urllib.request.Request(target, data=body, method=self.command,
                                         headers={h: self.headers[h] for h in passed if self.headers.get(h)})
            try:
                resp = urllib.request.urlopen(req, timeout=600)
            except urllib.error.HTTPError as e:
                resp = e
            data = resp.read().replace(upstream.encode(), own.encode())
            self.send_response(resp.status)
            for h in kept:
                if resp.headers.get(h):
                    self.send_header(h, resp.headers[h].replace(upstream, own))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_DELETE = do_POST = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return own


def sync(binary, base, extra, trace=False):
    """One sync into a fresh data directory: (seconds, resources). With `trace`, its progress
    lines are printed as they come, each with the seconds since it started."""
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        proc = subprocess.Popen([binary, "--data-dir", d, "--format", "json", "sync", "--server", base, "--all", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        errors = []
        for line in proc.stderr:
            errors.append(line)
            if trace:
                print(f"  {time.perf_counter() - started:7.2f} s {line.rstrip()[:120]}", file=sys.stderr)
        out = proc.stdout.read()
        proc.wait()
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"sync {' '.join(extra)} failed: {''.join(errors).strip()[-500:]}")
        return elapsed, json.loads(out)["resources"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", type=Path, default=DEFAULT_BUNDLES)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency", default="0",
                    help="milliseconds added to each request; several (0,50,200) are measured one after the other")
    ap.add_argument("--ehrqa")
    ap.add_argument("--trace", action="store_true", help="print each sync's progress lines with their times")
    args = ap.parse_args()
    binary = ehrqa_binary(args.ehrqa)
    sekmet = CACHE / "venv-sekmet/bin/sekmet"
    if not sekmet.exists():
        sys.exit("sekmet-fhir is missing: run scripts/setup")
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        base = f"http://127.0.0.1:{port}/fhir"
        config = Path(work) / "settings.yaml"
        config.write_text(f"base_url: {base}\nhost: 127.0.0.1\nport: {port}\ndb_path: {work}/sekmet.db\n"
                          "server_auth:\n  types: [none]\nsimulator:\n  enabled: false\n  delay_seconds: 0\n"
                          "validation:\n  inbound: warn\nlog_inbound: false\n")
        server = subprocess.Popen([str(sekmet), "serve", "-c", str(config)], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            # Shared practitioners and organisations first: patients refer to them conditionally.
            for b in sorted(args.bundles, key=lambda b: "Information" not in b.name):
                load(base, json.loads(b.read_text()))
            results = [measure(binary, base, float(ms), args.runs, args.trace) for ms in args.latency.split(",")]
        finally:
            server.terminate()
            server.wait()
    for rows in results:
        per, bulk = rows["per patient ($everything)"], rows["bulk ($export)"]
        rows["bulk_speedup"] = round(bulk["resources_per_sec"] / per["resources_per_sec"], 2)
        print(f"+{rows['latency_ms']:g} ms a request")
        for name in ("per patient ($everything)", "bulk ($export)"):
            r = rows[name]
            print(f"  {name:28} {r['resources']:>7} resources in {r['seconds']:6.2f} s: {r['resources_per_sec']:>6}/s")
        print(f"  bulk / per patient: {rows['bulk_speedup']}x")
    print(json.dumps(results))


def measure(binary, base, latency_ms, runs, trace):
    """Both ways, best of `runs`, with `latency_ms` added to each request."""
    if latency_ms > 0:
        base = latency_proxy(base, latency_ms / 1000)
    rows = {"latency_ms": latency_ms}
    for name, extra in (("per patient ($everything)", []), ("bulk ($export)", ["--bulk"])):
        best = min((sync(binary, base, extra, trace) for _ in range(runs)), key=lambda r: r[0])
        rows[name] = {"seconds": round(best[0], 3), "resources": best[1], "resources_per_sec": round(best[1] / best[0])}
    return rows


if __name__ == "__main__":
    main()
