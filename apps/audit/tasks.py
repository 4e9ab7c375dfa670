"""Periodic audit tasks, run by Celery beat (CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from apps.audit.checkpoints import audit_checkpoint_create


@shared_task(name="audit.checkpoint", ignore_result=True)
def audit_checkpoint() -> int | None:
    checkpoint = audit_checkpoint_create()
    return checkpoint.number if checkpoint else None
