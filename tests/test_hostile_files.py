"""Hostile and broken files: each ends with a clear reason, nothing else is affected.

Through the services (the parse runs in the sandboxed child exactly as in a worker); the
worker-level version of the same batch is in test_crash_and_worker.py.
"""

import io

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.archives import files_upload
from apps.ingestion.sandbox import SandboxError, run_limited
from apps.ingestion.services import UploadRejected, document_ingest, document_upload
from tests import files

pytestmark = pytest.mark.django_db


def upload(collection, user, name, data):
    return files_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))


def ingest_one(collection, user, name, data) -> Document | UploadRejected:
    [result] = upload(collection, user, name, data)
    if isinstance(result, UploadRejected):
        return result
    return document_ingest(document_id=result.document.id)


@pytest.mark.parametrize(
    ("name", "build", "reason"),
    [
        ("bomb.zip", files.zip_bomb, "zip bomb"),
        ("traversal.zip", files.zip_traversal, "unsafe path"),
        ("pixels.png", files.pixel_bomb_png, "decompression bomb"),
        ("xxe.docx", files.docx_xxe, "DOCTYPE"),
        ("laughs.docx", files.docx_billion_laughs, "DOCTYPE"),
        ("locked.pdf", files.encrypted_pdf, "password-protected"),
        ("truncated.pdf", files.truncated_pdf, "incomplete PDF"),
    ],
)
def test_hostile_or_broken_file_fails_with_a_clear_reason(collection, corpus_admin, name, build, reason):
    good = ingest_one(collection, corpus_admin, "good.md", b"# Canteen\n\nThe canteen opens at noon.\n")
    outcome = ingest_one(collection, corpus_admin, name, build())
    if isinstance(outcome, UploadRejected):
        assert reason.lower() in str(outcome).lower()
        assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_REJECTED, payload__file_name=name).exists()
    else:
        assert outcome.status == Document.Status.FAILED, outcome.failure_reason
        assert reason.lower() in outcome.failure_reason.lower()
        assert not Chunk.objects.filter(document=outcome).exists()
    good.refresh_from_db()
    assert good.status == Document.Status.INDEXED and Chunk.objects.filter(document=good).count() == good.chunk_count


def test_xxe_content_never_reaches_the_index(collection, corpus_admin):
    ingest_one(collection, corpus_admin, "xxe.docx", files.docx_xxe("/etc/passwd"))
    assert not Chunk.objects.filter(text__contains="root:").exists()


def test_billion_laughs_in_html_is_not_expanded(collection, corpus_admin):
    outcome = ingest_one(collection, corpus_admin, "laughs.html", files.billion_laughs_html())
    texts = "".join(Chunk.objects.values_list("text", flat=True))
    assert "lollollol" not in texts and len(texts) < 10_000
    assert isinstance(outcome, UploadRejected) or outcome.status in {Document.Status.INDEXED, Document.Status.FAILED}


def test_extension_that_lies_is_decided_by_content(collection, corpus_admin):
    document = ingest_one(collection, corpus_admin, "minutes.docx", files.text_pdf())
    assert document.status == Document.Status.INDEXED and document.file_type == ".pdf"
    assert Chunk.objects.filter(document=document, page_number=2).exists()


def test_zero_byte_and_oversized_files_are_refused(collection, corpus_admin, settings):
    [empty] = upload(collection, corpus_admin, "empty.pdf", b"")
    assert isinstance(empty, UploadRejected) and "empty" in str(empty)
    settings.UPLOAD_MAX_BYTES = 1000

    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("read before the size check")

    [big] = files_upload(collection=collection, uploaded_by=corpus_admin, name="big.zip", content=Unreadable(), size=10**9)
    assert isinstance(big, UploadRejected) and "over the upload limit" in str(big)
    assert Document.objects.count() == 0


def _hog_memory():
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))


def _spin():
    while True:
        pass


def test_sandbox_stops_a_parser_that_eats_memory_or_time():
    with pytest.raises(SandboxError) as info:
        run_limited(_hog_memory, memory_bytes=256 * 1024 * 1024, cpu_seconds=30, wall_seconds=30)
    assert info.value.code == "memory"
    with pytest.raises(SandboxError) as info:
        run_limited(_spin, memory_bytes=256 * 1024 * 1024, cpu_seconds=60, wall_seconds=2)
    assert info.value.code == "timeout"
    assert run_limited(sum, [1, 2, 3], memory_bytes=256 * 1024 * 1024, cpu_seconds=10, wall_seconds=10).value["value"] == 6


def test_limit_breaches_are_retried_then_quarantined(collection, corpus_admin, settings):
    settings.INGEST_PARSE_WALL_SECONDS = 0.01  # nothing can be parsed in 10 ms
    settings.INGEST_MAX_ATTEMPTS = 2
    [result] = upload(collection, corpus_admin, "notes.md", b"# Notes\n\nSomething to parse.\n")
    from apps.ingestion.pipeline import TransientIngestError

    with pytest.raises(TransientIngestError):
        document_ingest(document_id=result.document.id)  # attempt 1: retried later
    document = document_ingest(document_id=result.document.id)  # attempt 2: quarantined
    assert document.status == Document.Status.FAILED and document.quarantined_at is not None
    assert document.attempts == 2 and "longer than" in document.failure_reason
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_QUARANTINED, payload__document_id=document.id).exists()
