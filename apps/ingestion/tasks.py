"""Celery tasks: take ids, call a service. JSON arguments only.

Two queues: ``parse`` (CPU-heavy, sandboxed) and ``embed`` (the model), so a slow parse
never holds up embedding. Both tasks are idempotent (apps.ingestion.claims), acked late and
requeued if the worker process dies (settings: acks_late, reject_on_worker_lost). Nothing
imports this module: tasks are sent by name (apps.ingestion.queue).
"""

import logging

from celery import shared_task
from django.conf import settings

from apps.ingestion import queue
from apps.ingestion.claims import BUSY, TransientIngestError, document_give_up
from apps.ingestion.embed_step import documents_embed
from apps.ingestion.housekeeping import ingestion_housekeep
from apps.ingestion.parse_step import document_parse

logger = logging.getLogger(__name__)


def _backoff(retries: int) -> float:
    return min(settings.INGEST_RETRY_BACKOFF_SECONDS * (2**retries), 300)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, name=queue.PARSE_TASK)
def ingest_document(self, document_id: int) -> None:
    """The parse step (queue "parse")."""
    try:
        outcome = document_parse(document_id=document_id, task_id=self.request.id)
    except TransientIngestError as error:
        raise self.retry(countdown=_backoff(self.request.retries), exc=error) from None
    except Exception as error:  # database hiccup, bug: retry, then give up with a reason
        logger.exception("Parsing document %s failed", document_id)
        if self.request.retries >= settings.INGEST_MAX_ATTEMPTS:
            document_give_up(document_id=document_id, task_id=self.request.id,
                             reason=f"Unexpected error while parsing ({type(error).__name__}): {error}")
            return
        raise self.retry(countdown=_backoff(self.request.retries), exc=error) from None
    if outcome == BUSY:  # another task holds it: look again later, as a new task (not a retry)
        queue.enqueue_parse(document_id=document_id, countdown=settings.INGEST_BUSY_RECHECK_SECONDS)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, name=queue.EMBED_TASK)
def embed_documents(self, document_id: int) -> None:
    """The embed step (queue "embed"), batched across parsed documents."""
    try:
        outcome = documents_embed(document_id=document_id, task_id=self.request.id)
    except Exception as error:
        logger.exception("Embedding document %s failed", document_id)
        if self.request.retries >= settings.INGEST_MAX_ATTEMPTS:
            document_give_up(document_id=document_id, task_id=self.request.id,
                             reason=f"Unexpected error while embedding ({type(error).__name__}): {error}")
            return
        raise self.retry(countdown=_backoff(self.request.retries), exc=error) from None
    if outcome == BUSY:
        queue.enqueue_embed(document_id=document_id, countdown=settings.INGEST_BUSY_RECHECK_SECONDS)


@shared_task(name=queue.HOUSEKEEPING_TASK, ignore_result=True)
def ingestion_housekeeping() -> None:
    """Celery beat, every INGEST_HOUSEKEEPING_SECONDS: nothing stays stranded."""
    ingestion_housekeep()
