"""Periodic account tasks, run by Celery beat (CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from apps.accounts.failures import auth_failures_summarise


@shared_task(name="accounts.summarise_auth_failures", ignore_result=True)
def summarise_auth_failures() -> int:
    return auth_failures_summarise()
