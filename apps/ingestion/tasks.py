"""Celery tasks: take ids, call a service. JSON arguments only."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from apps.ingestion.services import document_ingest, document_mark_failed

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def ingest_document(document_id: int) -> None:
    try:
        document_ingest(document_id=document_id)
    except SoftTimeLimitExceeded:
        document_mark_failed(
            document_id=document_id,
            reason="Processing took longer than the time limit; the file may be too large or malformed.",
        )
    except Exception as error:
        logger.exception("Ingestion of document %s failed", document_id)
        document_mark_failed(
            document_id=document_id,
            reason=f"Unexpected error while indexing ({type(error).__name__}): {error}",
        )
