"""Real workers: a SIGKILL mid-task loses nothing, and hostile files leave the worker alive."""

import io
import os
import signal
import time

import psutil
import pytest
from django.db import connection
from django.db.models import Count

from apps.corpus.models import Chunk, Document
from apps.ingestion.archives import files_upload
from apps.ingestion.services import UploadRejected
from tests import files
from tests.servers import database_url, start_worker, stop_process_group, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
DONE = {Document.Status.INDEXED, Document.Status.FAILED}


def _upload_all(collection, user, items):
    ids = []
    for name, data in items:
        for result in files_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data)):
            if not isinstance(result, UploadRejected):
                ids.append(result.document.id)
    return ids


def _finished(ids):
    docs = list(Document.objects.filter(id__in=ids))
    return docs if len(docs) == len(ids) and all(d.status in DONE for d in docs) else None


def _assert_no_duplicate_chunks(ids):
    for doc in Document.objects.filter(id__in=ids, status=Document.Status.INDEXED):
        chunks = Chunk.objects.filter(document=doc)
        assert chunks.count() == doc.chunk_count > 0
        assert chunks.values("text").annotate(n=Count("id")).filter(n__gt=1).count() == 0


@pytest.fixture
def worker_process(tmp_path):
    log = tmp_path / "worker.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                           log_path=log, INGEST_BUSY_RECHECK_SECONDS="2", INGEST_RETRY_BACKOFF_SECONDS="1")
    yield process, log
    stop_process_group(process)


def test_sigkill_mid_task_ends_every_document_indexed_or_failed_once(worker_process, collection, corpus_admin):
    process, log = worker_process
    batch = [(f"policy-{i}.md", f"# Policy {i}\n\n" .encode() + b"Rule number %d applies to every site.\n\n" % i * 40) for i in range(8)]
    batch += [("schedule.pdf", files.text_pdf()), ("broken.pdf", files.truncated_pdf())]
    ids = _upload_all(collection, corpus_admin, batch)

    busy = {Document.Status.PROCESSING, Document.Status.EMBEDDING}
    wait_until(lambda: Document.objects.filter(id__in=ids, status__in=busy).exists(), timeout=180, what="a task in flight", log=log)
    children = psutil.Process(process.pid).children()
    assert children, "the worker has no pool process"
    for child in children:
        os.kill(child.pid, signal.SIGKILL)  # the process running the task dies mid-task
    killed_at = time.monotonic()

    try:
        docs = wait_until(lambda: _finished(ids), timeout=420, what="every document to finish", log=log)
    except AssertionError as error:  # say which documents are stuck, and how
        stuck = [(d.title, d.status, d.attempts, d.claim_task_id, d.lease_expires_at) for d in
                 Document.objects.filter(id__in=ids).exclude(status__in=DONE)]
        raise AssertionError(f"{error}\nnot finished: {stuck}") from None
    assert time.monotonic() - killed_at < 420
    by_title = {d.title: d for d in docs}
    assert by_title["broken.pdf"].status == Document.Status.FAILED and by_title["broken.pdf"].failure_reason
    assert all(d.status == Document.Status.INDEXED for t, d in by_title.items() if t != "broken.pdf"), \
        [(d.title, d.status, d.failure_reason) for d in docs]
    _assert_no_duplicate_chunks(ids)
    assert "WorkerLostError" in log.read_text() or "SIGKILL" in log.read_text()


def test_hostile_batch_leaves_the_worker_alive(worker_process, collection, corpus_admin):
    process, log = worker_process
    batch = [
        ("xxe.docx", files.docx_xxe()), ("laughs.docx", files.docx_billion_laughs()), ("pixels.png", files.pixel_bomb_png()),
        ("locked.pdf", files.encrypted_pdf()), ("truncated.pdf", files.truncated_pdf()), ("lies.docx", files.text_pdf()),
        ("good.md", b"# Canteen\n\nThe canteen opens at noon.\n"),
    ]
    ids = _upload_all(collection, corpus_admin, batch)
    docs = {d.title: d for d in wait_until(lambda: _finished(ids), timeout=300, what="the batch", log=log)}
    assert process.poll() is None
    assert "WorkerLostError" not in log.read_text() and "exited with" not in log.read_text()  # no pool process died
    for title in ("xxe.docx", "laughs.docx", "pixels.png", "locked.pdf", "truncated.pdf"):
        assert docs[title].status == Document.Status.FAILED and docs[title].failure_reason, title
    assert docs["good.md"].status == docs["lies.docx"].status == Document.Status.INDEXED
