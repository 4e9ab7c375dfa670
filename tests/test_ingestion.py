"""Upload and ingestion through the services (the queue path is tested in test_worker.py)."""

import io

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.services import UploadRejected, document_ingest, document_upload
from tests.uploads import upload

POLICY = b"""# Payments policy

## Approvals

Payments above 10,000 EUR require two approvals from the finance team.

## Records

Invoices are kept for seven years.
"""


@pytest.mark.django_db
def test_markdown_upload_is_chunked_embedded_and_indexed(collection, corpus_admin):
    result = upload(collection, corpus_admin, "payments.md", POLICY)
    assert result.created and result.document.status == Document.Status.QUEUED

    document = document_ingest(document_id=result.document.id)

    assert document.status == Document.Status.INDEXED, document.failure_reason
    chunks = list(Chunk.objects.filter(document=document))
    assert len(chunks) == document.chunk_count >= 1
    assert any("two approvals" in c.text for c in chunks)
    assert chunks[0].section_title == "Payments policy"  # short sections are combined under the first title
    assert all(len(c.embedding) == 384 for c in chunks)
    assert Chunk.objects.filter(document=document, search_vector__isnull=False).count() == len(chunks)
    assert list(AuditEvent.objects.filter(event_type__in=[EventType.DOCUMENT_UPLOADED, EventType.DOCUMENT_INDEXED]).values_list("event_type", flat=True).order_by("sequence")) == [EventType.DOCUMENT_UPLOADED, EventType.DOCUMENT_INDEXED]


@pytest.mark.django_db
def test_same_bytes_twice_are_one_document(collection, corpus_admin):
    first = upload(collection, corpus_admin, "a.md", POLICY)
    second = upload(collection, corpus_admin, "copy-of-a.md", POLICY)
    assert not second.created and second.document.id == first.document.id
    assert Document.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("tool.exe", b"MZ\x90\x00binary", "not supported"),
        ("fake.pdf", b"just some text pretending to be a PDF", "PDF"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason_and_audited(collection, corpus_admin, name, data, message):
    with pytest.raises(UploadRejected, match=message):
        upload(collection, corpus_admin, name, data)
    assert Document.objects.count() == 0
    event = AuditEvent.objects.get(event_type=EventType.DOCUMENT_REJECTED)
    assert event.payload["file_name"] == name and message.lower() in event.payload["reason"].lower()


@pytest.mark.django_db
def test_oversized_upload_is_refused_before_it_is_read(collection, corpus_admin, settings):
    settings.UPLOAD_MAX_BYTES = 1000

    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("an oversized upload must be refused before reading")

    with pytest.raises(UploadRejected, match="over the upload limit"):
        document_upload(collection=collection, uploaded_by=corpus_admin, name="big.txt", content=Unreadable(), size=5000)


@pytest.mark.django_db
def test_upload_that_lies_about_its_size_is_stopped_at_the_limit(collection, corpus_admin, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    with pytest.raises(UploadRejected, match="over the upload limit"):
        upload(collection, corpus_admin, "big.txt", b"x" * 5000, size=10)


@pytest.mark.django_db
def test_truncated_pdf_ends_failed_with_a_reason_and_no_chunks(collection, corpus_admin):
    broken = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pa"
    try:
        result = upload(collection, corpus_admin, "broken.pdf", broken)
    except UploadRejected as rejection:  # refusing at upload is an acceptable outcome too
        assert "pdf" in str(rejection).lower()
        return
    document = document_ingest(document_id=result.document.id)
    assert document.status == Document.Status.FAILED
    assert document.failure_reason
    assert not Chunk.objects.filter(document=document).exists()
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_FAILED, payload__document_id=document.id).exists()


@pytest.mark.django_db
def test_ingesting_twice_replaces_chunks_instead_of_duplicating(collection, corpus_admin):
    result = upload(collection, corpus_admin, "payments.md", POLICY)
    document = document_ingest(document_id=result.document.id)
    count = document.chunk_count
    Document.objects.filter(id=document.id).update(status=Document.Status.PROCESSING)  # a redelivered task
    document_ingest(document_id=document.id)
    assert Chunk.objects.filter(document=document).count() == count
    assert document_ingest(document_id=document.id) is None  # already indexed: left alone
