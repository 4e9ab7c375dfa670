"""Hostile and broken files: each ends with a clear reason, nothing else is affected.

Through the services (the parse runs in the sandboxed child exactly as in a worker); the
worker-level version of the same batch is in test_crash_and_worker.py.
"""

import io
import os
import signal

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion import embed_step, parse_step, parsing
from apps.ingestion.archives import files_upload
from apps.ingestion.sandbox import run_limited
from apps.ingestion.sandbox_wire import SandboxError
from apps.ingestion.services import UploadRejected, document_ingest
from tests import files
from tests.uploads import ingest_one
from tests.uploads import upload_files as upload

pytestmark = pytest.mark.django_db


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
    # indexed as the text it shows, its entity references left unexpanded
    assert isinstance(outcome, Document) and outcome.status == Document.Status.INDEXED, outcome
    assert Chunk.objects.filter(document=outcome).exists()


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


def test_the_parsers_limits_are_the_settings_in_the_child_and_at_upload(collection, corpus_admin, settings):
    """The limits come from the settings: to the sandboxed child with its job (its environment
    is cleared, so no variable could carry them), and to the zip upload's own check."""
    settings.INGEST_IMAGE_MAX_PIXELS = 1000  # the scan is 1,000s of pixels wide
    outcome = ingest_one(collection, corpus_admin, "badge.png", files.png_scan())
    assert outcome.status == Document.Status.FAILED and "over the limit of 1,000 pixels" in outcome.failure_reason
    settings.INGEST_ZIP_MAX_MEMBERS = 2
    [refused] = upload(collection, corpus_admin, "policies.zip", files.zip_of_documents())
    assert isinstance(refused, UploadRejected) and "more than the limit of 2" in str(refused)


def test_sandbox_stops_a_parser_that_eats_memory_or_time():
    with pytest.raises(SandboxError) as info:
        run_limited(_hog_memory, memory_bytes=256 * 1024 * 1024, cpu_seconds=30, wall_seconds=30)
    assert info.value.code == "memory"
    with pytest.raises(SandboxError) as info:
        run_limited(_spin, memory_bytes=256 * 1024 * 1024, cpu_seconds=60, wall_seconds=2)
    assert info.value.code == "timeout"
    assert run_limited(sum, [1, 2, 3], memory_bytes=256 * 1024 * 1024, cpu_seconds=10, wall_seconds=10).value == 6


def test_the_parse_child_runs_at_a_lower_priority_than_the_worker(settings):
    """Parsing untrusted files yields the CPU to the encoder and the web server."""
    assert settings.INGEST_PARSE_NICE > 0
    own = os.nice(0)
    limits = {"memory_bytes": 256 * 1024 * 1024, "cpu_seconds": 10, "wall_seconds": 10}
    assert run_limited(os.nice, 0, **limits, nice=settings.INGEST_PARSE_NICE).value == min(19, own + settings.INGEST_PARSE_NICE)
    assert run_limited(os.nice, 0, **limits).value == own


def test_limit_breaches_are_retried_then_quarantined(collection, corpus_admin, settings):
    settings.INGEST_PARSE_WALL_SECONDS = 0.01  # nothing can be parsed in 10 ms
    settings.INGEST_MAX_ATTEMPTS = 2
    [result] = upload(collection, corpus_admin, "notes.md", b"# Notes\n\nSomething to parse.\n")
    from apps.ingestion.claims import TransientIngestError

    with pytest.raises(TransientIngestError):
        document_ingest(document_id=result.document.id)  # attempt 1: retried later
    document = document_ingest(document_id=result.document.id)  # attempt 2: quarantined
    assert document.status == Document.Status.FAILED and document.quarantined_at is not None
    assert document.attempts == 2 and "longer than" in document.failure_reason
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_QUARANTINED, payload__document_id=document.id).exists()


def _parse_or_die(path, name, **options):
    """A parser that crashes its process on one file (as a segfaulting C parser would)."""
    if name == "poison.txt":
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_parse_and_chunk(path, name, **options)


_real_parse_and_chunk = parsing.parse_and_chunk


def test_small_text_files_are_parsed_together_and_a_crash_fails_only_its_file(
    collection, corpus_admin, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """One child parses a batch of small text files; if that child dies, each file is parsed
    alone, so the file that kills its parser fails by itself and the others are unaffected."""
    settings.INGEST_PARSE_BATCH_DOCS = 8
    names = ["a.txt", "b.md", "poison.txt", "c.txt"]
    docs = [upload(collection, corpus_admin, name, f"# {name}\n\nParagraph about {name} number {i}.\n".encode())[0].document
            for i, name in enumerate(names)]
    monkeypatch.setattr(parsing, "parse_and_chunk", _parse_or_die)
    forks, nice = [], []
    real_run_limited = parse_step.run_limited
    monkeypatch.setattr(parse_step, "run_limited",
                        lambda fn, *a, **k: forks.append(fn.__name__) or nice.append(k["nice"]) or real_run_limited(fn, *a, **k))

    with django_capture_on_commit_callbacks(execute=False):
        assert parse_step.document_parse(document_id=docs[0].id, task_id="batch-task") == parse_step.DONE
    # One child for the four files; it died, so each was parsed alone.
    assert forks == ["_parse_many_in_child"] + ["_parse_in_child"] * 4
    assert set(nice) == {settings.INGEST_PARSE_NICE}  # every child at the lower priority
    status = {d.title: Document.objects.get(id=d.id) for d in docs}
    for name in ("a.txt", "b.md", "c.txt"):
        assert status[name].status == Document.Status.PARSED and status[name].attempts == 1, name
    poison = status["poison.txt"]
    # Not the task's own file: back in the queue with its own task, the reason kept.
    assert poison.status == Document.Status.QUEUED and poison.attempts == 1
    assert "was killed" in poison.failure_reason and poison.claim_task_id == ""

    # Without the crash, a batch is one fork and every file is parsed.
    monkeypatch.setattr(parsing, "parse_and_chunk", _real_parse_and_chunk)
    more = [upload(collection, corpus_admin, f"more-{i}.txt", f"Note {i} on the quarterly audit.\n".encode())[0].document
            for i in range(5)]
    forks.clear()
    with django_capture_on_commit_callbacks(execute=False):
        parse_step.document_parse(document_id=more[0].id, task_id="batch-task-2")
    assert forks == ["_parse_many_in_child"]
    assert Document.objects.filter(id__in=[d.id for d in more] + [poison.id], status=Document.Status.PARSED).count() == 6
    # The embed step takes them all in one batch and indexes each, with its audit event.
    embed_step.documents_embed(document_id=more[0].id, task_id="embed-task")
    indexed = Document.objects.filter(id__in=[d.id for d in docs + more], status=Document.Status.INDEXED)
    assert indexed.count() == 9
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_INDEXED).count() == 9
    assert all(Chunk.objects.filter(document=d).exclude(search_vector=None).count() == d.chunk_count > 0 for d in indexed)
