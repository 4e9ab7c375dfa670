"""The platform's own Django app: wiring that must happen in every Django process."""

from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "rag_platform"
    label = "rag_platform"
    verbose_name = "Platform wiring"

    def ready(self) -> None:
        """Load rag_platform's Celery app in every process that sets Django up (manage.py
        commands, gunicorn, uvicorn, the tests), not only in the workers: otherwise tasks
        sent from there are bound to Celery's default app (``amqp://localhost``, no
        routes), wait forever or land on a queue no worker of the right kind consumes.
        Then the start-up refusals for the role the entry point named (web, ASGI; the Celery
        worker and beat are named later, and checked then: rag_platform.celery_app)."""
        from apps.audit.refusals import refuse_unsafe_start
        from rag_platform.celery_app import app
        from rag_platform.process.runtime import process_role

        app.set_current()
        app.set_default()
        refuse_unsafe_start(process_role())
