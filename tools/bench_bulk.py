#!/usr/bin/env python3
"""Bulk Data `$export` against per-patient `$everything`, on one real FHIR server.

Starts sekmet-fhir (installed by scripts/setup) on a free loopback port, loads the fixture
patients into it (transactions of PUTs, `urn:uuid:` references rewritten to `Type/id` as a server
resolving them would), then syncs them all into fresh data directories with the same ehrqa
binary, one way after the other, best of N: `ehrqa sync --all` (per patient, `$everything`) and
`ehrqa sync --bulk --all` (`Patient/$export`). Prints resources/s for each and the ratio.

    python3 tools/bench_bulk.py [--runs 3] [--ehrqa PATH] [BUNDLE.json ...]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
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


def sync(binary, base, extra):
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        out = subprocess.run([binary, "--data-dir", d, "--format", "json", "sync", "--server", base, "--all", *extra],
                             capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if out.returncode != 0:
            sys.exit(f"sync {' '.join(extra)} failed: {out.stderr.strip()[-500:]}")
        return elapsed, json.loads(out.stdout)["resources"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*", type=Path, default=DEFAULT_BUNDLES)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ehrqa")
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
                          "server_auth:\n  types: [none]\nsimulator:\n  enabled: false\n"
                          "validation:\n  inbound: warn\nlog_inbound: false\n")
        server = subprocess.Popen([str(sekmet), "serve", "-c", str(config)], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            # Shared practitioners and organisations first: patients refer to them conditionally.
            for b in sorted(args.bundles, key=lambda b: "Information" not in b.name):
                load(base, json.loads(b.read_text()))
            rows = {}
            for name, extra in (("per patient ($everything)", []), ("bulk ($export)", ["--bulk"])):
                best = min((sync(binary, base, extra) for _ in range(args.runs)), key=lambda r: r[0])
                rows[name] = {"seconds": round(best[0], 3), "resources": best[1],
                              "resources_per_sec": round(best[1] / best[0])}
        finally:
            server.terminate()
            server.wait()
    per, bulk = rows["per patient ($everything)"], rows["bulk ($export)"]
    rows["bulk_speedup"] = round(bulk["resources_per_sec"] / per["resources_per_sec"], 2)
    for name in ("per patient ($everything)", "bulk ($export)"):
        r = rows[name]
        print(f"{name:28} {r['resources']:>7} resources in {r['seconds']:6.2f} s: {r['resources_per_sec']:>6}/s")
    print(f"bulk / per patient: {rows['bulk_speedup']}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
