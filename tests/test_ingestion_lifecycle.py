"""Duplicates, versions, deletion and archives, each audited; formats keep their structure."""

import io
import os

import pytest

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.archives import files_upload
from apps.ingestion.deletion import document_delete
from apps.ingestion.services import UploadRejected, document_ingest
from tests import files
from tests.uploads import upload

pytestmark = pytest.mark.django_db


def test_duplicate_upload_is_one_document_and_audited(collection, corpus_admin):
    first = upload(collection, corpus_admin, "leave.md", b"# Leave\n\n30 days.\n")
    second = upload(collection, corpus_admin, "leave-copy.md", b"# Leave\n\n30 days.\n")
    assert not second.created and second.document.id == first.document.id
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_DUPLICATE, payload__document_id=first.document.id).exists()


def test_new_version_replaces_chunks_in_one_swap(collection, corpus_admin):
    v1 = document_ingest(document_id=upload(collection, corpus_admin, "leave.md", b"# Leave\n\nStaff get 25 days of leave.\n").document.id)
    v2_upload = upload(collection, corpus_admin, "leave.md", b"# Leave\n\nStaff get 30 days of leave.\n")
    v2 = v2_upload.document
    assert v2.version == 2 and v2.replaces_id == v1.id
    # until v2 is indexed, search still sees v1 only
    assert list(Chunk.objects.filter(collection=collection).values_list("document_id", flat=True).distinct()) == [v1.id]
    document_ingest(document_id=v2.id)
    texts = list(Chunk.objects.filter(collection=collection).values_list("text", flat=True))
    assert texts and all("30 days" in t for t in texts)
    v1.refresh_from_db()
    assert v1.status == Document.Status.SUPERSEDED
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_VERSION_ADDED, payload__previous_document_id=v1.id).exists()


def test_deleted_document_can_no_longer_be_retrieved(collection, corpus_admin, member, django_capture_on_commit_callbacks):
    from apps.retrieval.services import chunks_search

    phrase = b"# Vault\n\nThe vault combination is changed every Tuesday by the duty manager.\n"
    document = document_ingest(document_id=upload(collection, corpus_admin, "vault.md", phrase).document.id)
    path = document.file.path
    hits = chunks_search(user=member, query="vault combination Tuesday")
    assert any(getattr(h, "document_id", None) == document.id or "vault" in str(getattr(h, "text", "")).lower() for h in hits)

    with django_capture_on_commit_callbacks(execute=True):  # the file goes after the commit
        assert document_delete(document_id=document.id, actor=corpus_admin)

    assert not Document.objects.filter(id=document.id).exists()
    assert not Chunk.objects.filter(document_id=document.id).exists()
    assert not Chunk.objects.filter(text__icontains="vault combination").exists()
    assert not os.path.exists(path)
    hits = chunks_search(user=member, query="vault combination Tuesday")
    assert not any("vault combination" in str(getattr(h, "text", "")).lower() for h in hits)
    assert AuditEvent.objects.filter(event_type=EventType.DOCUMENT_DELETED, payload__document_id=document.id).exists()


def test_zip_archive_members_become_documents(collection, corpus_admin):
    results = files_upload(collection=collection, uploaded_by=corpus_admin, name="bundle.zip",
                           content=io.BytesIO(files.zip_of_documents()), size=None)
    names = sorted(r.document.title for r in results if not isinstance(r, UploadRejected))
    assert names == ["policies/leave.md", "policies/suppliers.csv"]  # titles keep the archive's folders


@pytest.mark.parametrize(
    ("name", "build", "expect", "page"),
    [
        ("deck.pptx", files.pptx, "datacentre lease", 2),
        ("budget.xlsx", files.xlsx, "Surgeon | 14", 2),
        ("contracts.csv", files.csv, "Nordic Catering | 2026-12-31 | 125000", None),
        ("drill.eml", files.eml, "Twelve percent", None),
        ("badges.rtf", files.rtf, "return their badge", None),
        ("archive.odt", files.odt, "archived after ten years", None),
        ("travel.docx", files.docx_with_table, "Oslo | 120 EUR", None),
        ("fire.pdf", files.scanned_pdf, "Fire doors", 1),
        ("badge.png", files.png_scan, "Badge readers", 1),
    ],
)
def test_formats_are_indexed_with_pages_and_tables(collection, corpus_admin, name, build, expect, page):
    document = document_ingest(document_id=upload(collection, corpus_admin, name, build()).document.id)
    assert document.status == Document.Status.INDEXED, document.failure_reason
    chunk = next(c for c in Chunk.objects.filter(document=document) if expect.lower() in c.text.lower())
    assert chunk.page_number == page
    if "|" in expect:
        assert "<table" in chunk.metadata["table_html"]


def test_a_bulk_upload_sends_one_task_per_group_and_leaves_no_file_behind(
    collection, corpus_admin, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Inside bulk_enqueue() small text files get one parse task per INGEST_PARSE_BATCH_DOCS,
    other files their own at once. Even when the tasks run out of order (a group's task
    claiming another group's files), every file is parsed: a parse task that leaves small
    files queued sends a successor."""
    from apps.ingestion import parse_step
    from apps.ingestion import queue as task_queue
    from apps.ingestion.services import bulk_enqueue

    settings.INGEST_PARSE_BATCH_DOCS = 3
    sent: list[int] = []

    def record(*, document_id):
        sent.append(document_id)
        return True

    monkeypatch.setattr(task_queue, "enqueue_parse", record)
    monkeypatch.setattr(task_queue, "enqueue_embed", lambda *, document_id: True)
    with bulk_enqueue():
        notes, report = [], None
        for i in range(8):  # each upload commits (the test's transaction: run its on-commit hooks)
            with django_capture_on_commit_callbacks(execute=True):
                if i < 7:
                    notes.append(upload(collection, corpus_admin, f"note-{i}.txt",
                                        f"Note {i}: the audit committee meets monthly.\n".encode()).document)
                else:
                    report = upload(collection, corpus_admin, "report.docx", files.docx_with_table()).document
    assert sent == [notes[0].id, notes[3].id, report.id, notes[6].id]

    # The workers take the second group's task first: it claims the lowest ids (notes 0, 1).
    runs = 0
    queue = [notes[3].id, notes[0].id, notes[6].id]
    sent.clear()
    while queue:
        runs += 1
        with django_capture_on_commit_callbacks(execute=True):
            parse_step.document_parse(document_id=queue.pop(0), task_id=f"task-{runs}")
        queue += sent
        sent.clear()
        assert runs < 10
    assert Document.objects.filter(id__in=[n.id for n in notes], status=Document.Status.PARSED).count() == 7


def test_a_bulk_upload_sends_its_first_group_early_so_the_workers_start_at_once(
    collection, corpus_admin, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The first group goes after INGEST_PARSE_FIRST_GROUP_DOCS files, later ones when full:
    the model starts encoding while the rest of a large import is still being uploaded."""
    from apps.ingestion import queue as task_queue
    from apps.ingestion.services import bulk_enqueue

    settings.INGEST_PARSE_BATCH_DOCS = 4
    settings.INGEST_PARSE_FIRST_GROUP_DOCS = 2
    sent: list[int] = []
    monkeypatch.setattr(task_queue, "enqueue_parse", lambda *, document_id: sent.append(document_id) or True)
    with bulk_enqueue():
        notes = []
        for i in range(7):
            with django_capture_on_commit_callbacks(execute=True):
                notes.append(upload(collection, corpus_admin, f"memo-{i}.txt", f"Memo {i}: the board approved it.\n".encode()).document)
            if i == 1:
                assert sent == [notes[0].id], "the first group is sent as soon as it has 2 files"
    assert sent == [notes[0].id, notes[2].id, notes[6].id]
