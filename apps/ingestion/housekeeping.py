"""Nothing stays stranded: the periodic pass that celery beat runs in every deployment
(CELERY_BEAT_SCHEDULE "ingestion-housekeeping"), and the report of
``manage.py documents_check``.

A claim whose lease expired belongs to a task that died without its message coming back
(a broker restart without persistence, a purged queue): its document goes back to the
step it was in, with a new task. A document whose task could not be sent (the broker was
down at upload time) carries a waiting note and is sent again. Each pass sends at most
one task per parse group, stops at the first failed send (the broker is still down), and
touches at most INGEST_HOUSEKEEPING_BATCH documents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.corpus.models import Document
from apps.ingestion import queue
from apps.ingestion.parse_step import is_batchable

logger = logging.getLogger(__name__)

S = Document.Status


def _expired() -> Q:
    return Q(status__in=[S.PROCESSING, S.EMBEDDING]) & (Q(lease_expires_at__lt=timezone.now()) | Q(lease_expires_at__isnull=True))


def _waiting() -> Q:
    return Q(status__in=[S.QUEUED, S.PARSED], failure_reason__startswith=queue.WAITING_NOTE)


def ingestion_housekeep() -> dict[str, int]:
    """Hand expired claims and unsent documents to new tasks. Returns what it did."""
    limit = settings.INGEST_HOUSEKEEPING_BATCH
    with transaction.atomic():
        expired = list(Document.objects.select_for_update(skip_locked=True).filter(_expired())
                       .order_by("id").values_list("id", "status")[:limit])
        for held, back_to in ((S.PROCESSING, S.QUEUED), (S.EMBEDDING, S.PARSED)):
            ids = [i for i, s in expired if s == held]
            if ids:
                Document.objects.filter(_expired(), id__in=ids).update(status=back_to, claim_task_id="", lease_expires_at=None)
    waiting = list(Document.objects.filter(_waiting()).order_by("id").values_list("id", "status")[:limit])
    ids = sorted({i for i, _ in expired} | {i for i, _ in waiting})
    rows = Document.objects.filter(id__in=ids, status__in=[S.QUEUED, S.PARSED]).order_by("id")
    parse_single, parse_small, embed = [], [], []
    for doc_id, status, file_type, size in rows.values_list("id", "status", "file_type", "size_bytes"):
        if status == S.PARSED:
            embed.append(doc_id)
        elif is_batchable(file_type, size):
            parse_small.append(doc_id)
        else:
            parse_single.append(doc_id)
    group = max(1, settings.INGEST_PARSE_BATCH_DOCS)
    sends = [(queue.enqueue_parse, d, [d]) for d in parse_single]
    sends += [(queue.enqueue_parse, parse_small[i], parse_small[i:i + group]) for i in range(0, len(parse_small), group)]
    if embed:  # one embed task batches them all and sends a successor for what is left
        sends.append((queue.enqueue_embed, embed[0], embed))
    sent = 0
    for send, doc_id, covered in sends:
        if not send(document_id=doc_id):
            queue.mark_waiting(covered)
            break
        Document.objects.filter(id__in=covered, failure_reason__startswith=queue.WAITING_NOTE).update(failure_reason="")
        sent += 1
    result = {"expired_claims": len(expired), "waiting": len(waiting), "tasks_sent": sent}
    if expired or waiting:
        logger.info("ingestion housekeeping: %s", result)
    return result


@dataclass
class DocumentsReport:
    stranded_claims: list[tuple[int, str, str]] = field(default_factory=list)  # id, title, status
    waiting: list[tuple[int, str]] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    missing_files: list[tuple[int, str]] = field(default_factory=list)
    superseded_without_successor: list[tuple[int, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.stranded_claims or self.waiting or self.orphan_files or self.missing_files
                    or self.superseded_without_successor)


def documents_check(*, limit: int = 1000) -> DocumentsReport:
    """Stranded claims, unsent documents, stored files no document points to (and the
    reverse), superseded documents whose successor is gone. Read only; at most ``limit``
    of each are listed."""
    report = DocumentsReport()
    report.stranded_claims = list(Document.objects.filter(_expired()).order_by("id").values_list("id", "title", "status")[:limit])
    report.waiting = list(Document.objects.filter(_waiting()).order_by("id").values_list("id", "title")[:limit])
    report.superseded_without_successor = list(
        Document.objects.filter(status=S.SUPERSEDED, replaced_by__isnull=True).order_by("id").values_list("id", "title")[:limit])
    root = Path(settings.MEDIA_ROOT)
    known: set[str] = set()
    for doc_id, title, name in Document.objects.order_by("id").values_list("id", "title", "file").iterator(chunk_size=2000):
        known.add(name)
        if len(report.missing_files) < limit and not (root / name).is_file():
            report.missing_files.append((doc_id, title))
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if len(report.orphan_files) >= limit:
                break
            relative = path.relative_to(root).as_posix()
            if path.is_file() and not relative.startswith("staging/") and relative not in known:
                report.orphan_files.append(relative)
    return report
