#!/usr/bin/env python3
"""Writes a notes-heavy benchmark set: Synthea patients whose DocumentReference notes are long
(several KB each), the way a hospital's progress notes are, for `ehrqa bench ingest`. The shared
Synthea notes are under 1 KB; ingest costs on long notes (token counting above all) are what
this set measures.

Each patient of SRC is copied COPIES times with every UUID replaced by a new deterministic one
(uuid5, as tools/clone_patients.py does), and each of its notes is extended with what a clinician
would write from that patient's own record up to the note's date: an interval history, the
latest results of every kind as a table, the active conditions and medications, and a plan,
all from the bundle itself. Deterministic: the same SRC gives byte-identical output.

  python3 tools/make_notes_heavy.py ../shared/data/synthea OUT_DIR [--copies 2] [--patients 50]
"""
import argparse
import base64
import json
import os
import re
import uuid

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NS = uuid.UUID("2b0f8f5e-7c1d-4c59-a1a8-5d7e3c9b4f20")


def display(concept):
    concept = concept or {}
    for c in concept.get("coding", []):
        if c.get("display"):
            return c["display"]
    return concept.get("text", "")


def when(r):
    for k in ("effectiveDateTime", "performedDateTime", "authoredOn", "onsetDateTime", "date",
              "occurrenceDateTime", "recordedDate"):
        if isinstance(r.get(k), str):
            return r[k][:10]
    period = r.get("period") or r.get("performedPeriod") or {}
    return (period.get("start") or "")[:10]


def value(o):
    q = o.get("valueQuantity")
    if q:
        return f"{q.get('value')} {q.get('unit', '')}".strip()
    if o.get("valueCodeableConcept"):
        return display(o["valueCodeableConcept"])
    parts = [f"{display(c.get('code'))} {value(c)}" for c in o.get("component", [])]
    return "; ".join(p for p in parts if p.strip())


def long_note(text, resources, date):
    before = [r for r in resources if when(r) and when(r) <= date]
    latest = {}
    for o in (r for r in before if r["resourceType"] == "Observation"):
        latest[display(o.get("code"))] = o
    conditions = sorted({display(r.get("code")) for r in before if r["resourceType"] == "Condition"
                         and not r.get("abatementDateTime")})
    meds = sorted({display(r.get("medicationCodeableConcept")) for r in before
                   if r["resourceType"] == "MedicationRequest" and r.get("status") == "active"})
    procedures = [r for r in before if r["resourceType"] == "Procedure"][-15:]
    lines = [text, "", "# Interval History"]
    for r in [r for r in before if r["resourceType"] == "Encounter"][-12:]:
        reason = ", ".join(display(x) for x in r.get("reasonCode", [])) or "routine follow-up"
        lines.append(f"On {when(r)} the patient was seen for {display((r.get('type') or [{}])[0])} "
                     f"({reason}). Findings were reviewed with the patient and questions answered.")
    lines += ["", "# Results", "| date | test | value |", "| --- | --- | --- |"]
    for name, o in sorted(latest.items()):
        lines.append(f"| {when(o)} | {name} | {value(o)} |")
    lines += ["", "# Active Problems"] + [f"- {c}" for c in conditions or ["none recorded"]]
    lines += ["", "# Current Medications"] + [f"- {m}" for m in meds or ["none"]]
    lines += ["", "# Procedures"] + [f"- {when(p)}: {display(p.get('code'))}" for p in procedures]
    lines += ["", "# Assessment and Plan",
              "Continue the current regimen. Labs as listed above were reviewed; abnormal values "
              "were discussed and repeat testing is planned at the next visit. Return sooner for "
              "new or worsening symptoms. Total time spent with the patient was documented."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--patients", type=int, default=50)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = sorted(n for n in os.listdir(args.src) if n.endswith(".json"))
    written = resources_total = note_bytes = notes = 0
    for k in range(1, args.copies + 1):
        for name in names:
            if written == args.patients:
                break
            with open(os.path.join(args.src, name), encoding="utf-8") as f:
                bundle = json.load(f)
            resources = [e["resource"] for e in bundle.get("entry", [])]
            for r in resources:
                if r["resourceType"] != "DocumentReference":
                    continue
                for c in r.get("content", []):
                    att = c.get("attachment", {})
                    if "data" in att:
                        text = base64.b64decode(att["data"]).decode("utf-8")
                        body = long_note(text, resources, when(r)).encode("utf-8")
                        att["data"] = base64.b64encode(body).decode("ascii")
                        note_bytes += len(body)
                        notes += 1
            text = json.dumps(bundle)
            text = UUID.sub(lambda m: str(uuid.uuid5(NS, f"{m.group(0)}/{k}")), text)
            with open(os.path.join(args.out, f"notes{k}_{name}"), "w", encoding="utf-8") as f:
                f.write(text)
            written += 1
            resources_total += len(resources)
    print(f"wrote {written} bundles, {resources_total:,} resources, {notes:,} notes "
          f"averaging {note_bytes // max(notes, 1):,} bytes, to {args.out}")


if __name__ == "__main__":
    main()
