"""Nothing stranded (issue 13): a task that gives up releases its batch, waiting re-checks
do not use up the retry budget, and celery beat's housekeeping hands expired claims to
the real worker."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.corpus.models import Document
from apps.ingestion import parse_step, queue, tasks
from tests.servers import PROJECT, database_url, stop_process_group, wait_until
from tests.uploads import upload_document as _upload

S = Document.Status


@pytest.fixture
def sends(monkeypatch):
    """The tasks the code under test sends (by name), instead of putting them on the broker."""
    sent: list[tuple[str, int, float | None]] = []
    monkeypatch.setattr(queue, "_send", lambda name, document_id, countdown: sent.append((name, document_id, countdown)) or True)
    return sent


@pytest.mark.django_db
def test_a_parse_task_that_gives_up_releases_the_rest_of_its_batch(collection, corpus_admin, settings, monkeypatch,
                                                                    sends, django_capture_on_commit_callbacks):
    """An unexpected error on the last attempt fails the task's own document; the small
    files it had claimed with it used to stay "processing" until someone restarted the stack."""
    settings.INGEST_MAX_ATTEMPTS = 2
    docs = [_upload(collection, corpus_admin, f"memo-{i}.txt", f"Memo {i} on the audit plan.\n".encode()) for i in range(3)]

    def broken(*args, **kwargs):
        raise RuntimeError("database went away mid-batch")

    monkeypatch.setattr(parse_step, "run_limited", broken)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.ingest_document.apply(args=[docs[0].id], task_id="gives-up", retries=settings.INGEST_MAX_ATTEMPTS)
    status = {d.id: Document.objects.get(id=d.id) for d in docs}
    assert status[docs[0].id].status == S.FAILED and "database went away" in status[docs[0].id].failure_reason
    for other in docs[1:]:
        assert status[other.id].status == S.QUEUED and status[other.id].claim_task_id == "", status[other.id].status
        assert (queue.PARSE_TASK, other.id, None) in sends


@pytest.mark.django_db
@pytest.mark.timeout(60)
def test_a_waiting_recheck_is_a_new_task_not_a_retry(collection, corpus_admin, settings, sends):
    """Another task holds the document: look again later without counting a retry (three
    re-checks used to leave no retry for a real error)."""
    document = _upload(collection, corpus_admin, "held.txt", b"Held by another task.\n")
    Document.objects.filter(id=document.id).update(status=S.PROCESSING, claim_task_id="other",
                                                   lease_expires_at=timezone.now() + timedelta(minutes=5))
    result = tasks.ingest_document.apply(args=[document.id], task_id="late", retries=0)
    assert result.successful(), result.traceback
    assert sends == [(queue.PARSE_TASK, document.id, settings.INGEST_BUSY_RECHECK_SECONDS)]
    assert Document.objects.get(id=document.id).claim_task_id == "other"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_beat_hands_an_expired_claim_to_the_worker(worker, collection, corpus_admin, tmp_path):
    """A document whose task died with its message (a broker restart, a purged queue) is
    indexed without anyone restarting anything: celery beat runs the housekeeping task."""
    import hashlib

    from django.core.files.base import ContentFile
    from rag_platform.embedded import child_environment

    # Stored as an upload stores it, but no task is on the broker: it died with its message.
    data = b"Visitors sign the register at reception.\n"
    stranded = Document(collection=collection, title="stranded.txt", sha256=hashlib.sha256(data).hexdigest(),
                        size_bytes=len(data), file_type=".txt", uploaded_by=corpus_admin, status=S.PROCESSING,
                        claim_task_id="died-with-its-message", attempts=1,
                        lease_expires_at=timezone.now() - timedelta(seconds=1))
    stranded.file.save("stranded.txt", ContentFile(data), save=False)
    stranded.save()
    log = tmp_path / "beat.log"
    env = child_environment(DATABASE_URL=database_url(connection.settings_dict), CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"],
                            INGEST_HOUSEKEEPING_SECONDS="2")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / "celerybeat-schedule")],
        cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_until(lambda: Document.objects.get(id=stranded.id).status == S.INDEXED, timeout=180,
                   what="housekeeping to hand the expired claim to the worker", log=worker)
    finally:
        stop_process_group(beat)
    assert queue.HOUSEKEEPING_TASK in log.read_text()
    assert Document.objects.get(id=stranded.id).attempts == 2  # the fresh claim counted its attempt
