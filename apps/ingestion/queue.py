"""The one place that sends ingestion tasks to the broker, by task name.

Sending by name keeps every sender (services, the two steps, housekeeping, management
commands) free of the tasks module, and the routes in ``CELERY_TASK_ROUTES`` put each task
on its queue ("parse" or "embed"). The app is rag_platform's: it is loaded in every Django
process (rag_platform.apps.PlatformConfig); a process that somehow runs without it is
refused here instead of sending to Celery's default ``amqp://localhost``.
"""

from __future__ import annotations

import logging

from celery import current_app

from apps.corpus.models import Document

logger = logging.getLogger(__name__)

PARSE_TASK = "apps.ingestion.tasks.ingest_document"
EMBED_TASK = "apps.ingestion.tasks.embed_documents"
HOUSEKEEPING_TASK = "apps.ingestion.tasks.ingestion_housekeeping"

# The note a document carries while its task could not be sent; housekeeping re-sends it.
WAITING_NOTE = "Waiting: the ingestion queue is unreachable"
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 1}


def enqueue_parse(*, document_id: int, countdown: float | None = None) -> bool:
    return _send(PARSE_TASK, document_id, countdown)


def enqueue_embed(*, document_id: int, countdown: float | None = None) -> bool:
    return _send(EMBED_TASK, document_id, countdown)


def _app():
    app = current_app._get_current_object()
    if app.main != "rag_platform":
        raise RuntimeError("rag_platform's Celery app is not loaded in this process; tasks would go to "
                           "Celery's default broker (is rag_platform.apps.PlatformConfig in INSTALLED_APPS?)")
    return app


def _send(task_name: str, document_id: int, countdown: float | None) -> bool:
    """Send one task; False (and the document keeps a note saying why) if the broker
    cannot be reached. A waiting note from an earlier failed send is cleared on success."""
    try:
        _app().send_task(task_name, args=[document_id], countdown=countdown, retry=True, retry_policy=_RETRY_POLICY)
    except Exception as error:  # kombu raises OperationalError subclasses, not one base
        logger.error("Could not queue document %s (%s): %s", document_id, task_name, error)
        mark_waiting([document_id], f" ({error})")
        return False
    Document.objects.filter(id=document_id, failure_reason__startswith=WAITING_NOTE).update(failure_reason="")
    return True


def mark_waiting(document_ids: list[int], detail: str = "", statuses=(Document.Status.QUEUED, Document.Status.PARSED)) -> None:
    """Documents whose task could not be sent: they stay queued, with a note saying why;
    the housekeeping task (celery beat) sends them again."""
    Document.objects.filter(id__in=document_ids, status__in=statuses).update(
        failure_reason=f"{WAITING_NOTE}{detail}. It will be retried."
    )
