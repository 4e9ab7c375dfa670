"""WSGI entry point (gunicorn ``rag_platform.wsgi:application``)."""

import os

from rag_platform.process.offline import apply_offline_environment

apply_offline_environment()
from rag_platform.process.egress import install_egress_guard  # noqa: E402

install_egress_guard()
from rag_platform.process.runtime import set_process_role  # noqa: E402

set_process_role("web")  # before Django starts: the start-up checks read it
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
