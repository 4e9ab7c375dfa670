"""The erasure findings of the 2026-12-07 security review (issue 23: M4, M5, M6), each
reproduced against the real embedded PostgreSQL first; the restore half (M5) is in
tests/test_backup_restore.py, which starts a second cluster."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.answering.erasure import erase_document
from apps.audit.keys import ensure_keys
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
