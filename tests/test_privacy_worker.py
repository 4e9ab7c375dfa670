"""The personal-data policies in a real Celery worker (its pool processes warm the detector
with the parsers): a masking collection and a refusing one, through the queue."""

import io

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.audit.services import audit_verify_chain
from apps.corpus.models import Chunk, Collection, Document
from apps.ingestion.services import document_upload
from tests.factories import CollectionFactory
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

NOTE = (b"# Referral\n\nPatient Margaret Okafor, NHS number 943 476 5919, born 14 March 1952. "
        b"Call the ward on +44 20 7123 4567 or write to ward7@hospital.example.org before discharge.\n")


def test_the_worker_masks_or_refuses_by_collection_policy(worker, corpus_admin):
    masking = CollectionFactory(name="Referrals (masked)", created_by=corpus_admin, pii_policy=Collection.PiiPolicy.MASK)
    refusing = CollectionFactory(name="Public notices", created_by=corpus_admin, pii_policy=Collection.PiiPolicy.REFUSE)
    ids = [document_upload(collection=c, uploaded_by=corpus_admin, name="referral.md", content=io.BytesIO(NOTE),
                           size=len(NOTE)).document.id for c in (masking, refusing)]

    def finished():
        docs = list(Document.objects.filter(id__in=ids).order_by("id"))
        return docs if all(d.status in {Document.Status.INDEXED, Document.Status.FAILED} for d in docs) else None

    masked, refused = wait_until(finished, timeout=240, what="the worker to finish", log=worker)
    assert masked.status == Document.Status.INDEXED, masked.failure_reason
    text = " ".join(Chunk.objects.filter(document=masked).values_list("text", flat=True))
    for value in ("Margaret Okafor", "943 476 5919", "14 March 1952", "7123 4567", "ward7@hospital.example.org"):
        assert value not in text, value
    for placeholder in ("<PERSON>", "<UK_NHS>", "<DATE_OF_BIRTH>", "<PHONE_NUMBER>", "<EMAIL_ADDRESS>"):
        assert placeholder in text, (placeholder, text)
    assert refused.status == Document.Status.FAILED and refused.failure_code == "personal_data"
    assert "1 NHS number" in refused.failure_reason and "1 e-mail address" in refused.failure_reason
    indexed = AuditEvent.objects.get(event_type=EventType.DOCUMENT_INDEXED, payload__document_id=masked.id)
    assert indexed.payload["pii_policy"] == "mask" and indexed.payload["personal_data"]["UK_NHS"] == 1
    assert "personal-data detector" in worker.read_text()  # warmed in the pool processes, not on the first file
    assert audit_verify_chain().ok
