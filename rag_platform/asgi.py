"""ASGI entry point, for servers such as uvicorn."""

from rag_platform.process import start

start("web asgi")  # before Django starts: the start-up refusals read the role

from django.core.asgi import get_asgi_application  # noqa: E402

from rag_platform.request_limits import asgi_request_size_limit  # noqa: E402

application = asgi_request_size_limit(get_asgi_application())
