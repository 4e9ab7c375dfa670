"""The Celery application. Workers start with ``celery -A rag_platform.celery_app worker``."""

import os

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()
from rag_platform.egress import install_egress_guard  # noqa: E402

install_egress_guard()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from celery import Celery  # noqa: E402

app = Celery("rag_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
