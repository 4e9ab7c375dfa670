"""The embed step batches chunks across documents (apps.ingestion.embed_step), with a real
worker: a SIGKILL of the process encoding a batch loses nothing and indexes nothing twice,
and a lone upload is not held back by the wait for a fuller batch."""

import io
import os
import re
import signal
import socket
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, Document
from apps.ingestion.archives import files_upload
from apps.ingestion.services import bulk_enqueue
from tests.servers import database_url, start_worker, stop_process_group, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
S = Document.Status


def _upload(collection, user, items) -> list[int]:
    ids = []
    with bulk_enqueue():  # one parse task for the group: the embed step gets them together
        for name, data in items:
            for result in files_upload(collection=collection, uploaded_by=user, name=name,
                                       content=io.BytesIO(data), size=len(data)):
                ids.append(result.document.id)
    return ids


def _long_document(i: int, paragraphs: int) -> bytes:
    body = "\n\n".join(
        f"Section {i}.{p}. Records of site {i} are kept for {p + 3} years in the archive room, "
        f"then reviewed by the records officer of department {p}, who decides whether the file "
        f"is destroyed, transferred or kept longer. " * 4
        for p in range(paragraphs))
    return f"# Retention rules {i}\n\n{body}\n".encode()


def _worker(tmp_path, **env):
    log = tmp_path / "worker.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"],
                           log_path=log, INGEST_BUSY_RECHECK_SECONDS="2", INGEST_RETRY_BACKOFF_SECONDS="1", **env)
    return process, log


def _turn_holder(worker_pid: int) -> int | None:
    """The pool process holding the model turn: its flock, as /proc/locks lists it."""
    lock = Path(settings.DATA_DIR) / "run" / f"encoder-turn-{socket.gethostname()}.lock"
    if not lock.exists():
        return None
    inode = os.stat(lock).st_ino
    children = {c.pid for c in psutil.Process(worker_pid).children()}
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()  # "3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" ("->" for waiters)
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4].isdigit() and int(parts[4]) in children \
                and int(parts[5].rsplit(":", 1)[1]) == inode:
            return int(parts[4])
    return None


def _encoding_a_batch(worker_pid: int) -> tuple[int, list[int]] | None:
    """(pid, ids) while one process holds the turn and has claimed several documents."""
    claimed = list(Document.objects.filter(status=S.EMBEDDING).values_list("id", flat=True))
    pid = _turn_holder(worker_pid) if len(claimed) >= 2 else None
    return (pid, claimed) if pid else None


def test_sigkill_while_a_batch_encodes_loses_nothing_and_indexes_nothing_twice(tmp_path, collection, corpus_admin):
    process, log = _worker(tmp_path)
    try:
        ids = _upload(collection, corpus_admin, [(f"rules-{i}.md", _long_document(i, 12)) for i in range(8)])
        pid, claimed = wait_until(lambda: _encoding_a_batch(process.pid), timeout=240, interval=0.05,
                                  what="a batch of several documents encoding", log=log)
        os.kill(pid, signal.SIGKILL)
        assert Document.objects.filter(id__in=claimed, status=S.INDEXED).count() == 0, "killed after it stored"

        def finished():
            docs = list(Document.objects.filter(id__in=ids))
            return docs if all(d.status == S.INDEXED for d in docs) else None
        try:
            docs = wait_until(finished, timeout=300, what="every document indexed", log=log)
        except AssertionError as error:
            stuck = list(Document.objects.filter(id__in=ids).exclude(status=S.INDEXED)
                         .values_list("title", "status", "claim_task_id", "lease_expires_at"))
            raise AssertionError(f"{error}\nnot indexed: {stuck}") from None
        assert process.poll() is None
    finally:
        stop_process_group(process)
    text = log.read_text()
    assert "WorkerLostError" in text or "SIGKILL" in text  # the batch really died mid-way
    for doc in docs:  # nothing twice
        chunks = Chunk.objects.filter(document=doc)
        assert chunks.count() == doc.chunk_count > 1
        assert chunks.values("ordinal").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    events = AuditEvent.objects.filter(event_type=EventType.DOCUMENT_INDEXED)
    per_document = sorted(e.payload["document_id"] for e in events)
    assert per_document == sorted(ids), "one indexed event per document, none twice"


def test_a_lone_upload_is_not_held_back_by_the_batch_wait(tmp_path, collection, corpus_admin):
    # A wait long enough to see: nothing else is being parsed, so the lone document skips it.
    process, log = _worker(tmp_path, INGEST_EMBED_WAIT_SECONDS="30")
    try:
        _upload(collection, corpus_admin, [("warm-up.md", b"# Warm\n\nThe pool processes load the model.\n")])
        wait_until(lambda: Document.objects.filter(title="warm-up.md", status=S.INDEXED).exists(), timeout=180,
                   what="the warm-up document", log=log)

        started = time.monotonic()
        (lone,) = _upload(collection, corpus_admin, [("canteen.md", b"# Canteen\n\nThe canteen opens at noon.\n")])
        wait_until(lambda: Document.objects.filter(id=lone, status=S.INDEXED).exists(), timeout=60, interval=0.05,
                   what="the lone document", log=log)
        alone = time.monotonic() - started
        assert alone < 15, f"a lone upload took {alone:.1f} s: it waited for a batch that was not coming"

        # While another document is being parsed (a live parse claim), the wait is bounded.
        stop_process_group(process)
        (busy,) = _upload(collection, corpus_admin, [("parsing.md", b"# Elsewhere\n\nBeing parsed.\n")])
        Document.objects.filter(id=busy).update(status=S.PROCESSING, claim_task_id="someone-else",
                                                lease_expires_at=timezone.now() + timedelta(minutes=10))
        process, log = _worker(tmp_path, INGEST_EMBED_WAIT_SECONDS="3")
        (second,) = _upload(collection, corpus_admin, [("hours.md", b"# Hours\n\nThe library opens at nine.\n")])
        wait_until(lambda: Document.objects.filter(id=second, status=S.INDEXED).exists(), timeout=240, interval=0.05,
                   what="the document beside a parse", log=log)
    finally:
        stop_process_group(process)
    waits = [float(w) for w in re.findall(r"waited ([0-9.]+) s for more", log.read_text())]
    assert waits and 2.9 <= max(waits) <= 3.0 + 1.0, waits  # waited for the parse, but no longer than the bound
