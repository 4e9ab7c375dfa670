"""ASGI entry point, for servers such as uvicorn."""

import os

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
