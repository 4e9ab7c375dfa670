"""WSGI entry point (gunicorn ``rag_platform.wsgi:application``)."""

from rag_platform.process import start

start("web")  # before Django starts: the start-up refusals read the role

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
