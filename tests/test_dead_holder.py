"""A claim whose process was killed is taken over at once (apps.ingestion.holders), not
after its lease: the fault is a pool process SIGKILLed while it holds documents, and the
redelivery of its task is not what gets them indexed."""

import io
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.corpus.models import Document
from apps.ingestion import holders, queue
from apps.ingestion.archives import files_upload
from apps.ingestion.claims import claim
from tests.servers import database_url, start_worker, stop_process_group, wait_until

S = Document.Status


def _killed_holder() -> str:
    """The holder string of a real process, recorded while it ran, then SIGKILLed."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = f"{holders._place()}/{child.pid}/{holders._start_ticks(child.pid)}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return holder


def _gone_holder() -> str:
    """The holder string of a pid no process has now (fast tests start no process)."""
    pid = next(pid for pid in range(int(open("/proc/sys/kernel/pid_max").read()) - 1, 1, -1)
               if not os.path.exists(f"/proc/{pid}"))
    return f"{holders._place()}/{pid}/12345"


def test_holder_strings_tell_dead_from_alive_and_unknown():
    me = holders.current_holder()
    assert me and not holders.holder_is_dead(me)
    assert holders.holder_is_dead(_gone_holder())
    place, pid, started = me.rsplit("/", 2)
    assert holders.holder_is_dead(f"{place}/{pid}/{int(started) - 1}"), "a pid reused by a later process"
    assert not holders.holder_is_dead(f"other-host/{place.split('/', 1)[1]}/{pid}/1"), "another host: the lease decides"
    assert not holders.holder_is_dead("") and not holders.holder_is_dead("garbage")


def _held(document, holder, status=S.PROCESSING, attempts=1):
    Document.objects.filter(id=document.id).update(
        status=status, claim_task_id="the-killed-task", claim_holder=holder, attempts=attempts,
        lease_expires_at=timezone.now() + timedelta(seconds=600))


def _upload(collection, user, name, text):
    data = text.encode()
    (result,) = files_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))
    return result.document


@pytest.mark.django_db
def test_only_a_dead_holders_claim_is_taken_before_its_lease(collection, corpus_admin):
    document = _upload(collection, corpus_admin, "a.txt", "Records are kept for seven years.")
    for holder, taken in ((holders.current_holder(), False), ("other-host/x/1/2/3", False), (_gone_holder(), True)):
        _held(document, holder)
        got = claim(document.id, free=[S.QUEUED], held=S.PROCESSING, task_id="another-task",
                    lease_seconds=60, count_attempt=True)
        assert got is taken, holder
    document.refresh_from_db()
    assert document.claim_task_id == "another-task" and document.claim_holder == holders.current_holder()
    assert document.attempts == 2, "the killed attempt and the takeover both count"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_documents_held_by_a_killed_process_are_indexed_without_waiting_for_the_lease(tmp_path, collection, corpus_admin):
    """Each document is held (parse, or embed with its drafts) by a process that was killed,
    under a 600 s lease, and its own task is waiting: a real worker indexes them in seconds."""
    texts = [f"Site {i} keeps its visitor books for {i + 2} years, then the records officer reviews them." for i in range(3)]
    docs = [_upload(collection, corpus_admin, f"site-{i}.txt", text) for i, text in enumerate(texts)]
    dead = _killed_holder()
    for doc in docs[:2]:
        _held(doc, dead)
    drafts = [{"text": texts[2], "page_number": None, "section_title": "", "ordinal": 0, "metadata": {}}]
    _held(docs[2], dead, status=S.EMBEDDING)
    Document.objects.filter(id=docs[2].id).update(draft_chunks=drafts)
    queue.enqueue_embed(document_id=docs[2].id)  # its embed task, waiting as a busy recheck would
    log = tmp_path / "worker.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                           log_path=log, INGEST_BUSY_RECHECK_SECONDS="2", INGEST_RETRY_BACKOFF_SECONDS="1")
    try:
        def indexed():
            rows = list(Document.objects.filter(id__in=[d.id for d in docs]).values_list("status", "attempts"))
            return rows if all(status == S.INDEXED for status, _ in rows) else None
        rows = wait_until(indexed, timeout=120, what="the killed holder's documents indexed (lease: 600 s)", log=log)
    finally:
        stop_process_group(process)
    assert sorted(attempts for _, attempts in rows) == [1, 2, 2], "a parse takeover counts an attempt, an embed one not"
