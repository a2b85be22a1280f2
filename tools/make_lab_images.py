#!/usr/bin/env python3
"""Renders lab-report images from a Synthea patient's lab panels and attaches them to a bundle.

Usage (any Python with Pillow; from the repository root):

    python3 tools/make_lab_images.py [--bundle BUNDLE ...] \
        [--out fixtures/images/lab-reports.json] [--questions eval/questions-images.jsonl]

For the patient's multi-analyte lab panels (CBC, metabolic panels, lipids...) it draws a report
the way a scanned or exported lab report looks: a header with the patient, the date and the
panel, then a table of analyte, value, unit, reference range and flag. Half are PNG, half JPEG;
some are turned by a degree or two and speckled, as scans are. Each image becomes a new
DiagnosticReport (`img-dr-N`) whose only content is that image (`presentedForm`):

* "copies" show the values of an existing panel (they exist as Observations too);
* "image-only" reports show the same panel on a date with no other data, with values moved by
  up to 15%: those values exist nowhere else in the record, so only transcription finds them.

It also writes questions about the image-only values ("What was the potassium in the lab report
of 2019-04-02?"), kind `image_lab_value`, with the gold value and the report as evidence.
Deterministic for a given input (seeded).
"""

import argparse
import base64
import io
import json
import random
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SEED = 20261129


def fmt(v: float) -> str:
    """Numbers as ehrqa renders them: up to 4 decimals, trailing zeros dropped."""
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return s if s != "-0" else "0"


def short(v: float) -> float:
    """Values as a lab prints them: 3 significant digits, at most 2 decimals."""
    if v == 0:
        return 0.0
    digits = max(0, min(2, 2 - int(f"{abs(v):e}".split("e")[1])))
    return round(v, digits)


def panels(bundle: dict):
    by_url = {e.get("fullUrl"): e["resource"] for e in bundle["entry"]}
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    seen = set()
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] != "DiagnosticReport" or len(r.get("result", [])) < 4:
            continue
        name = r["code"]["coding"][0]["display"]
        if name in seen:
            continue
        rows = []
        for ref in r["result"]:
            o = by_url.get(ref["reference"])
            q = (o or {}).get("valueQuantity")
            if not q or "value" not in q:
                continue
            rr = (o.get("referenceRange") or [{}])[0]
            low, high = rr.get("low", {}).get("value"), rr.get("high", {}).get("value")
            rows.append({"analyte": o["code"]["coding"][0]["display"], "value": float(q["value"]),
                         "unit": q.get("unit", ""), "low": low, "high": high})
        if len(rows) >= 4:
            seen.add(name)
            yield patient, r, name, rows


def render(patient: dict, when: str, panel: str, rows: list, rng: random.Random, scan: bool) -> Image.Image:
    W, H = 1400, 260 + 54 * len(rows)
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    big, font, small = (ImageFont.load_default(size=s) for s in (40, 30, 24))
    name = " ".join(patient["name"][0].get("given", []) + [patient["name"][0].get("family", "")])
    d.text((40, 30), "Riverside Clinical Laboratory", font=big, fill=(20, 40, 90))
    d.text((40, 90), f"Patient: {name}   DOB: {patient.get('birthDate', '')}   Collected: {when}", font=small, fill=(0, 0, 0))
    d.text((40, 130), f"Panel: {panel}", font=small, fill=(0, 0, 0))
    y = 190
    cols = [40, 700, 880, 1080, 1300]
    for x, head in zip(cols, ["Analyte", "Value", "Unit", "Reference", "Flag"]):
        d.text((x, y), head, font=font, fill=(0, 0, 0))
    d.line([(40, y + 40), (W - 40, y + 40)], fill=(0, 0, 0), width=2)
    for i, row in enumerate(rows):
        y = 240 + 54 * i
        flag = ""
        if row["low"] is not None and row["value"] < row["low"]:
            flag = "L"
        elif row["high"] is not None and row["value"] > row["high"]:
            flag = "H"
        ref = f"{fmt(row['low'])}-{fmt(row['high'])}" if row["low"] is not None and row["high"] is not None else ""
        analyte = row["analyte"] if len(row["analyte"]) <= 40 else row["analyte"][:38] + ".."
        for x, text in zip(cols, [analyte, fmt(row["value"]), row["unit"], ref, flag]):
            d.text((x, y), text, font=font, fill=(0, 0, 0))
    if scan:
        img = img.rotate(rng.uniform(-1.5, 1.5), resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
        px = img.load()
        for _ in range(img.width * img.height // 400):
            x, y = rng.randrange(img.width), rng.randrange(img.height)
            g = rng.randrange(120, 230)
            px[x, y] = (g, g, g)
    return img


def encode(img: Image.Image, jpeg: bool) -> tuple[str, str]:
    buf = io.BytesIO()
    if jpeg:
        img.save(buf, format="JPEG", quality=80)
        return "image/jpeg", base64.b64encode(buf.getvalue()).decode()
    img.convert("L").save(buf, format="PNG", optimize=True)
    return "image/png", base64.b64encode(buf.getvalue()).decode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", action="append", help="repeatable (default: the two Python Synthea fixtures)")
    ap.add_argument("--out", default="fixtures/images/lab-reports.json")
    ap.add_argument("--questions", default="eval/questions-images.jsonl")
    args = ap.parse_args()
    rng = random.Random(SEED)
    paths = args.bundle or ["fixtures/fhir/synthea/Dong_Effertz_a8f87e52.json", "fixtures/fhir/synthea/Mervin_Gaylord_d75e2405.json"]
    chosen = []
    for path in paths:
        chosen.extend(list(panels(json.loads(Path(path).read_text())))[:3])
    entries, questions = [], []
    n = 0
    for patient, report, panel, rows in chosen:
        when = report["effectiveDateTime"][:10]
        for image_only in (False, True):
            n += 1
            shown = [dict(r) for r in rows]
            day = when
            if image_only:
                day = (date.fromisoformat(when) + timedelta(days=37 + n)).isoformat()
                for r in shown:
                    r["value"] = short(r["value"] * rng.uniform(0.85, 1.15))
            else:
                for r in shown:
                    r["value"] = short(r["value"])
            img = render(patient, day, panel, shown, rng, scan=n % 3 == 0)
            ctype, data = encode(img, jpeg=n % 2 == 0)
            rid = f"img-dr-{n}"
            entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": {
                "resourceType": "DiagnosticReport", "id": rid, "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
                "code": {"coding": [dict(report["code"]["coding"][0])], "text": f"{panel} (scanned report)"},
                "subject": {"reference": f"Patient/{patient['id']}"},
                "effectiveDateTime": f"{day}T09:00:00Z",
                "issued": f"{day}T15:00:00Z",
                "presentedForm": [{"contentType": ctype, "title": f"{panel} report {day}", "data": data}],
            }})
            if image_only:
                for r in rng.sample(shown, 3):
                    name = r["analyte"].split(" [")[0].split(" in ")[0]
                    questions.append({
                        "id": f"img{len(questions) + 1:03d}", "patient": patient["id"], "kind": "image_lab_value",
                        "question": f"What was the {name.lower()} in the lab report of {day}?",
                        "answer": {"type": "number", "value": r["value"], "unit": r["unit"]},
                        "evidence": [f"DiagnosticReport/{rid}"],
                    })
    out = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out) + "\n")
    Path(args.questions).write_text("".join(json.dumps(q) + "\n" for q in questions))
    print(f"{len(entries)} reports, {len(questions)} questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
