"""The Celery application. Workers start with ``celery -A rag_platform.celery_app worker``."""

import os

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from celery import Celery  # noqa: E402

app = Celery("rag_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
