"""ASGI entry point, for servers such as uvicorn."""

import os

from rag_platform.process.offline import apply_offline_environment

apply_offline_environment()
from rag_platform.process.egress import install_egress_guard  # noqa: E402

install_egress_guard()
from rag_platform.process.runtime import set_process_role  # noqa: E402

set_process_role("web asgi")  # before Django starts: the start-up checks read it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from rag_platform.request_limits import asgi_request_size_limit  # noqa: E402

application = asgi_request_size_limit(get_asgi_application())
