#!/usr/bin/env python3
"""Writes COPIES copies of each Synthea bundle in SRC with every UUID replaced by a new,
deterministic one (uuid5 of the original and the copy number), so benchmarks can run with 100+
distinct patients from the shared 36. Names and clinical content are unchanged: the copies are for
load and latency, not for evaluation.

  python3 tools/clone_patients.py ../shared/data/synthea OUT_DIR --copies 3
"""
import argparse
import os
import re
import uuid

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NS = uuid.UUID("6f1c1f5e-3b1a-4b8e-9d0e-0e5f2a7c9b11")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--copies", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(args.src)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(args.src, name), encoding="utf-8") as f:
            text = f.read()
        for k in range(1, args.copies + 1):
            out = UUID.sub(lambda m: str(uuid.uuid5(NS, f"{m.group(0)}/{k}")), text)
            with open(os.path.join(args.out, f"copy{k}_{name}"), "w", encoding="utf-8") as f:
                f.write(out)
            n += 1
    print(f"wrote {n} bundles to {args.out}")


if __name__ == "__main__":
    main()
