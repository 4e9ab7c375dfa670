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
        routes), wait forever or land on a queue no worker of the right kind consumes."""
        from rag_platform.celery_app import app

        app.set_current()
        app.set_default()
