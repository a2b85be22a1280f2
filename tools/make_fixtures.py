#!/usr/bin/env python3
"""Builds fixtures/fhir/synthea* from ../shared/data: a few real patients, and the Java Synthea
hospital and practitioner bundles trimmed to the entries those patients reference (by identifier),
so that conditional references still resolve while the repo stays small.

Run from the repo root: python3 tools/make_fixtures.py
"""
import json
import os
import re
import shutil

SHARED = os.path.join("..", "shared", "data")
OUT = os.path.join("fixtures", "fhir")
PYTHON_PATIENTS = ["Dong_Effertz_a8f87e52.json", "Mervin_Gaylord_d75e2405.json"]
JAVA_PATIENTS = ["Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json",
                 "Cecelia952_Romaguera67_f1731e33-dc55-4ee8-72d7-cece2e49bedd.json"]
JAVA_SHARED = ["hospitalInformation1633536936158.json", "practitionerInformation1633536936158.json"]


def copy(src_dir, name, dst_dir):
    os.makedirs(dst_dir, exist_ok=True)
    shutil.copy(os.path.join(src_dir, name), os.path.join(dst_dir, name))


def referenced_identifiers(paths):
    wanted = set()
    pattern = re.compile(r'"reference"\s*:\s*"(\w+)\?identifier=([^"|]*)\|([^"]+)"')
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for rtype, system, value in pattern.findall(f.read()):
                wanted.add((rtype, value))
    return wanted


def keep(entry, wanted, kept_ids):
    r = entry["resource"]
    ids = {(r["resourceType"], i.get("value")) for i in r.get("identifier", [])}
    if ids & wanted:
        return True
    # PractitionerRole points at a kept Practitioner or Organization.
    refs = [r.get("practitioner", {}).get("identifier", {}).get("value"),
            r.get("organization", {}).get("identifier", {}).get("value")]
    return r["resourceType"] == "PractitionerRole" and any(v in kept_ids for v in refs if v)


def main():
    for name in PYTHON_PATIENTS:
        copy(os.path.join(SHARED, "synthea"), name, os.path.join(OUT, "synthea"))
    java_dir = os.path.join(SHARED, "synthea-java")
    for name in JAVA_PATIENTS:
        copy(java_dir, name, os.path.join(OUT, "synthea-java"))
    wanted = referenced_identifiers(os.path.join(java_dir, n) for n in JAVA_PATIENTS)
    kept_ids = {v for _, v in wanted}
    for name in JAVA_SHARED:
        with open(os.path.join(java_dir, name), encoding="utf-8") as f:
            bundle = json.load(f)
        bundle["entry"] = [e for e in bundle["entry"] if keep(e, wanted, kept_ids)]
        with open(os.path.join(OUT, "synthea-java", name), "w", encoding="utf-8") as f:
            json.dump(bundle, f, indent=1)
        print(name, len(bundle["entry"]), "entries kept")


if __name__ == "__main__":
    main()
