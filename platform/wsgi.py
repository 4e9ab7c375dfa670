"""WSGI entry point (gunicorn ``rag_platform.wsgi:application``)."""

import os

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
