"""The erasure findings of the 2026-12-07 security review (issue 23: M4, M5, M6), each
reproduced against the real embedded PostgreSQL first; the restore half (M5) is in
tests/test_backup_restore.py, which starts a second cluster."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.answering.erasure import erase_document
from apps.audit.keys import ensure_keys, ledger_key_ids
from apps.audit.models import AuditEvent, DataKey, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.services import document_ingest, document_upload

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

POLICY_V1 = b"# Policy\n\nThe Wexmoor ledger is reconciled by the treasurer each quarter.\n"
POLICY_V2 = b"# Policy\n\nThe Wexmoor ledger is reconciled by the treasurer each month.\n"


def upload(collection, user, data: bytes, *, ingest: bool) -> Document:
    result = document_upload(collection=collection, uploaded_by=user, name="policy.txt", content=io.BytesIO(data),
                             size=len(data))
    if ingest:
        document_ingest(document_id=result.document.id)
    return Document.objects.get(id=result.document.id)


@pytest.mark.parametrize("pending", [Document.Status.QUEUED, Document.Status.PROCESSING, Document.Status.FAILED])
def test_m6_erasing_a_document_erases_the_indexed_version_behind_a_pending_or_failed_one(
        collection, corpus_admin, pending):
    v1 = upload(collection, corpus_admin, POLICY_V1, ingest=True)
    assert v1.status == Document.Status.INDEXED and Chunk.objects.filter(document=v1).exists()
    ensure_keys([("document", v1.id)])  # as when an answer showed one of its passages
    v2 = upload(collection, corpus_admin, POLICY_V2, ingest=False)
    assert v2.version == 2 and v2.replaces_id == v1.id
    Document.objects.filter(id=v2.id).update(status=pending)

    out = io.StringIO()
    call_command("erase_document", str(v1.id), reason="records order 2026-31", stdout=out)

    assert not Document.objects.filter(collection=collection, title=v1.title).exists()
    assert not Chunk.objects.filter(document_id__in=[v1.id, v2.id]).exists()
    assert not DataKey.objects.filter(scope="document", subject_id__in=[v1.id, v2.id]).exists()
    assert "2 version(s) deleted" in out.getvalue(), out.getvalue()
    deleted = set(AuditEvent.objects.filter(event_type=EventType.DOCUMENT_DELETED)
                  .values_list("payload__document_id", flat=True))
    assert deleted == {v1.id, v2.id}
    erased = AuditEvent.objects.get(event_type=EventType.ERASED)
    assert sorted(erased.payload["document_ids"]) == sorted([v1.id, v2.id])


def test_m6_erasure_reports_the_versions_actually_deleted(collection, corpus_admin):
    v1 = upload(collection, corpus_admin, POLICY_V1, ingest=True)
    ensure_keys([("document", v1.id)])
    done = erase_document(document_id=v1.id, reason="records order 2026-32", actor=None)
    assert done.rows == 1 and done.sequence == AuditEvent.objects.get(event_type=EventType.ERASED).sequence
    assert done.key_ids == AuditEvent.objects.get(event_type=EventType.ERASED).payload["key_ids"]


def test_m4_an_unauthenticated_ledger_line_is_skipped_reported_and_destroys_nothing(
        settings, client, member, compliance_officer):
    """Anyone who can write the ledger file (every container mounting the data volume) could
    make keys unreadable, have ``audit_apply_erasures`` destroy them, or, with one non-JSON
    line, make every question fail to record. A line must carry the MAC only the master key gives."""
    from pathlib import Path

    from apps.audit.erasure import erase_keys
    from apps.audit.keys import keys_by_id
    from apps.audit.services import audit_record
    from apps.audit.selectors import event_content

    asked = audit_record(event_type=EventType.QUESTION_ASKED, outcome="answered", actor=member,
                         payload={"question": "Where is the Tollbridge archive?"})
    key = DataKey.objects.get(scope="user", subject_id=member.pk)
    ledger = Path(settings.AUDIT_ERASURE_LEDGER)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a") as handle:
        handle.write(json.dumps({"key_ids": [key.id], "sequence": 1, "reason": "forged"}) + "\n")  # the old format
        handle.write(json.dumps({"entry": {"key_ids": [key.id]}, "mac": "0" * 64}) + "\n")  # a made-up MAC
        handle.write("x\n")  # not even JSON
    assert ledger_key_ids() == set()
    assert key.id in keys_by_id([key.id])  # the key still opens ...
    assert event_content(asked)["question"] == "Where is the Tollbridge archive?"
    audit_record(event_type=EventType.QUESTION_ASKED, outcome="answered", actor=member,  # ... and still seals
                 payload={"question": "And the Tollbridge annex?"})
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_apply_erasures", stdout=out, stderr=err)
    assert "0 restored key(s) destroyed again" in out.getvalue() and "3 unauthenticated line(s) skipped" in out.getvalue()
    assert err.getvalue().count("not authenticated") == 3
    assert DataKey.objects.filter(id=key.id).exists() and not AuditEvent.objects.filter(event_type=EventType.ERASED).exists()
    client.force_login(compliance_officer)
    page = client.get(reverse("audit:event_list")).content.decode()
    assert "Erasure ledger: 3 line(s) not authenticated" in page  # shown to the officer

    # A genuine erasure writes an authenticated line; editing it makes it count for nothing.
    erasure = erase_keys(subjects=[("user", member.pk)], reason="GDPR request 31", actor=None, what={})
    assert ledger_key_ids() == set(erasure.key_ids)
    lines = ledger.read_text().splitlines()
    genuine = json.loads(lines[-1])
    assert genuine["mac"] and genuine["entry"]["keys"] == [[key.id, "user", member.pk]]
    genuine["entry"]["key_ids"] = [key.id, key.id + 1]
    ledger.write_text("\n".join([*lines[:-1], json.dumps(genuine)]) + "\n")
    assert ledger_key_ids() == set()
