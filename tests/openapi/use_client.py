"""Uses the client that openapi-python-client generated from /openapi.json against the running
service, the way an integrator would, and prints what it saw as one JSON object for the Rust test
(tests/it/openapi.rs) to check. Usage: use_client.py BASE_URL ADMIN_KEY SCOPED_KEY PATIENT"""

import json
import sys

from ehrqa_client import AuthenticatedClient, Client
from ehrqa_client.api.answers import ask_question
from ehrqa_client.api.chart import get_chart, get_timeline
from ehrqa_client.api.patients import get_record, list_patients, search_records
from ehrqa_client.models import AskRequest, Chart, OperationOutcome, TimelinePage

base, admin_key, scoped_key, patient = sys.argv[1:5]
admin = AuthenticatedClient(base_url=base, token=admin_key, raise_on_unexpected_status=True)
scoped = AuthenticatedClient(base_url=base, token=scoped_key, raise_on_unexpected_status=True)
anonymous = Client(base_url=base, raise_on_unexpected_status=True)

seen = {}
seen["patients"] = [p.id for p in list_patients.sync(client=admin)]
seen["scoped_patients"] = [p.id for p in list_patients.sync(client=scoped)]

chart = get_chart.sync(patient, client=admin)
assert isinstance(chart, Chart), chart
seen["chart"] = {
    "patient": chart.patient.id,
    "age": chart.age,
    "vitals": [s.code for s in chart.vitals],
    "labs": {s.code: {"latest": s.points[-1].value, "ref": s.points[-1].ref, "unit": s.unit} for s in chart.labs},
}

first = get_timeline.sync(patient, client=admin, limit=5)
assert isinstance(first, TimelinePage), first
second = get_timeline.sync(patient, client=admin, limit=5, cursor=first.next_cursor)
seen["timeline"] = {
    "first": [(e.ref, e.date) for e in first.entries],
    "second": [(e.ref, e.date) for e in second.entries],
}

hits = search_records.sync(patient, client=admin, q="hemoglobin a1c", limit=3)
seen["search"] = [h.ref for h in hits.results]

a1c_ref = chart.labs[0].points[-1].ref if chart.labs else None
if a1c_ref:
    rtype, rid = a1c_ref.split("/")
    seen["record"] = get_record.sync(patient, rtype, rid, client=admin).text

answer = ask_question.sync(patient, client=admin, body=AskRequest(question="What was his latest hemoglobin A1c?"))
seen["answer"] = {"text": answer.answer, "citations": [c.ref for c in answer.citations], "method": str(answer.method)}

forbidden = get_chart.sync_detailed(patient, client=scoped)
seen["scoped_chart"] = {
    "status": forbidden.status_code.value,
    "outcome": isinstance(forbidden.parsed, OperationOutcome),
}
unauthorized = get_chart.sync_detailed(patient, client=anonymous)
seen["anonymous_chart"] = {"status": unauthorized.status_code.value}

print(json.dumps(seen))
