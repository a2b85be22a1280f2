#!/usr/bin/env python3
"""Measures what one large FHIR resource costs in memory: `ehrqa ingest` on it (peak RSS) and
`ehrqa serve` receiving it in `POST /v1/bundles` (RSS before, peak, and some seconds after).

Each input is a collection Bundle with a Patient and one large resource of realistic clinical text:
  note:  a DocumentReference whose text/plain attachment (base64) carries the text
  value: an Observation whose valueString is the text (one huge rendering)
The size is the resource's JSON size in MB (10^6 bytes). "extra" is the peak over that of the same
bundle with a one-line text, so it is what the large text itself costs.

Run from the repo root after `cargo build --release` (CARGO_TARGET_DIR is honoured):
  python3 tools/mem_large_resource.py                      # 20 MB, both kinds, ingest and serve
  python3 tools/mem_large_resource.py --sizes 20,60 --concurrent 3
  python3 tools/mem_large_resource.py --bin /path/to/other/ehrqa   # e.g. an older build
"""
import argparse
import base64
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MB = 1_000_000

SECTIONS = ["Chief complaint", "History of present illness", "Medications", "Vital signs",
            "Physical examination", "Laboratory results", "Assessment and plan"]
PHRASES = [
    "Patient reports {n} days of intermittent chest tightness on exertion, relieved by rest.",
    "Denies fever, chills, night sweats or weight loss. Appetite is reduced since {d}.",
    "Metformin {m} mg twice daily; lisinopril {l} mg once daily; atorvastatin 40 mg at night.",
    "BP {s}/{t} mmHg, HR {h} bpm, RR 16/min, SpO2 {o}% on room air, temperature 36.{k} C.",
    "Lungs clear to auscultation bilaterally. No peripheral oedema. Abdomen soft, non-tender.",
    "HbA1c {a}.{k} % (ref 4.0-5.6), creatinine {c} umol/L, eGFR {e} mL/min/1.73m2, K 4.{k} mmol/L.",
    "Type 2 diabetes mellitus, suboptimally controlled; hypertension at goal; follow up in {n} weeks.",
    "Discussed diet, exercise and adherence; patient verbalised understanding of the plan.",
]


def note_text(size, seed=7):
    """About `size` bytes of note text: sections of sentences with varied numbers, in lines."""
    rng = random.Random(seed)
    out, total = [], 0
    while total < size:
        title = f"# {rng.choice(SECTIONS)}"
        lines = [title] + [
            rng.choice(PHRASES).format(
                n=rng.randint(1, 14), d=f"2019-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                m=rng.choice([500, 850, 1000]), l=rng.choice([5, 10, 20]), s=rng.randint(105, 165),
                t=rng.randint(60, 95), h=rng.randint(55, 110), o=rng.randint(92, 99),
                k=rng.randint(0, 9), a=rng.randint(5, 11), c=rng.randint(55, 140),
                e=rng.randint(35, 110))
            for _ in range(rng.randint(2, 6))
        ]
        block = "\n".join(lines) + "\n\n"
        out.append(block)
        total += len(block)
    return "".join(out)[:size]


def resource(kind, size):
    """The large resource, about `size` bytes of JSON."""
    subject = {"reference": "Patient/mem-p1"}
    if kind == "note":
        text = note_text(size * 3 // 4)
        data = base64.b64encode(text.encode()).decode()
        return {"resourceType": "DocumentReference", "id": "mem-doc", "status": "current",
                "subject": subject, "date": "2020-03-02T10:00:00Z",
                "type": {"text": "Progress note"},
                "content": [{"attachment": {"contentType": "text/plain", "data": data}}]}
    text = note_text(size).replace("\n", " ")
    return {"resourceType": "Observation", "id": "mem-obs", "status": "final", "subject": subject,
            "effectiveDateTime": "2020-03-02", "code": {"text": "Clinical summary"},
            "valueString": text}


def bundle(kind, size):
    patient = {"resourceType": "Patient", "id": "mem-p1", "name": [{"family": "Test"}],
               "birthDate": "1970-01-01"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": patient}, {"resource": resource(kind, size)}]}


def write_input(work, kind, size_mb):
    path = os.path.join(work, f"{kind}-{size_mb}.json")
    size = int(size_mb * MB) if size_mb else 64
    with open(path, "w") as f:
        json.dump(bundle(kind, size), f)
    return path


def ingest_peak_kb(binary, work, path):
    """Peak RSS in KiB of `ehrqa ingest PATH` on a fresh data directory, and its wall time."""
    data = tempfile.mkdtemp(dir=work)
    cmd = ["/usr/bin/time", "-f", "%M %e", binary, "--data-dir", data, "--format", "json",
           "ingest", "--no-transcribe", path]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"ingest failed: {r.stderr[-2000:]}")
    kb, secs = r.stderr.strip().splitlines()[-1].split()
    return int(kb), float(secs)


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, results):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/fhir+json"})
    started = time.time()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()
            results.append((r.status, time.time() - started))
    except urllib.error.HTTPError as e:
        results.append((e.code, time.time() - started))


def sample_peak(pid, stop, out):
    """The highest VmRSS seen every 10 ms until `stop` is set (VmHWM would include start-up)."""
    peak = 0
    while not stop.is_set():
        peak = max(peak, status_kb(pid, "VmRSS"))
        time.sleep(0.01)
    out.append(peak)


def serve_profile(binary, work, path, concurrent, settle):
    """RSS of `ehrqa serve` before, at its peak during, and `settle` seconds after `concurrent`
    simultaneous posts of the same input."""
    data = tempfile.mkdtemp(dir=work)
    port = free_port()
    log = open(os.path.join(work, f"serve-{port}.log"), "w")  # an unread pipe could stall it
    proc = subprocess.Popen([binary, "--data-dir", data, "serve", "--no-auth", "--no-model",
                             "--bind", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        with open(path, "rb") as f:
            body = f.read()
        time.sleep(5.0)  # what loading the tokenizer freed goes back first
        before = status_kb(proc.pid, "VmRSS")
        stop, peaks, results = threading.Event(), [], []
        sampler = threading.Thread(target=sample_peak, args=(proc.pid, stop, peaks))
        sampler.start()
        posts = [threading.Thread(target=post, args=(base + "/v1/bundles", body, results))
                 for _ in range(concurrent)]
        for t in posts:
            t.start()
        for t in posts:
            t.join()
        stop.set()
        sampler.join()
        peak = peaks[0]
        after = {}
        waited = 0.0
        for s in settle:
            time.sleep(s - waited)
            waited = s
            after[s] = status_kb(proc.pid, "VmRSS")
        return before, peak, after, results
    finally:
        proc.terminate()
        proc.wait()
        log.close()


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(target, "release", "ehrqa"))
    ap.add_argument("--sizes", default="20", help="resource sizes in MB, comma-separated")
    ap.add_argument("--kinds", default="note,value")
    ap.add_argument("--concurrent", type=int, default=1, help="simultaneous posts to serve")
    ap.add_argument("--no-serve", action="store_true")
    ap.add_argument("--no-ingest", action="store_true")
    args = ap.parse_args()
    settle = [1, 5, 10]
    with tempfile.TemporaryDirectory(prefix="ehrqa-mem-") as work:
        print(f"binary: {args.bin}")
        for kind in args.kinds.split(","):
            if not args.no_ingest:
                small_kb, _ = ingest_peak_kb(args.bin, work, write_input(work, kind, 0))
                print(f"{kind}: ingest of the same bundle with a one-line text: peak {small_kb / 1024:.0f} MiB")
            for size in args.sizes.split(","):
                path = write_input(work, kind, float(size))
                mb = os.path.getsize(path) / MB
                if not args.no_ingest:
                    kb, secs = ingest_peak_kb(args.bin, work, path)
                    print(f"{kind} {mb:.1f} MB: ingest peak {kb / 1024:.0f} MiB, "
                          f"extra {(kb - small_kb) / 1024:.0f} MiB, {secs:.1f} s")
                if args.no_serve:
                    continue
                before, peak, after, results = serve_profile(args.bin, work, path, args.concurrent, settle)
                later = ", ".join(f"{s} s after {kb_ / 1024:.0f}" for s, kb_ in after.items())
                codes = " ".join(f"{c}/{t:.1f}s" for c, t in results)
                print(f"{kind} {mb:.1f} MB x{args.concurrent}: serve RSS before {before / 1024:.0f} MiB, "
                      f"peak {peak / 1024:.0f} (+{(peak - before) / 1024:.0f}), {later}; responses {codes}")


if __name__ == "__main__":
    main()
