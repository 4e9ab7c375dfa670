"""Sets the audit context (hashed session, IP, user agent, request id) for each request."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.audit.context import AuditContext, audit_context

REQUEST_ID_HEADER = "X-Request-ID"


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = request_context(request)
        with audit_context(context):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = context.request_id
        return response


def request_context(request: HttpRequest) -> AuditContext:
    """Who asked from where for ``request`` (its request id kept once given): also for an
    error page drawn outside this middleware (rag_platform.errors)."""
    request_id = getattr(request, "request_id", "") or _clean_request_id(
        request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
    request.request_id = request_id
    return AuditContext(
        session=getattr(request, "session", None),
        secret=settings.SECRET_KEY,
        ip_address=_client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:512],
        request_id=request_id,
    )


def _clean_request_id(value: str | None) -> str:
    """Accept a proxy's request id only if it is short and plain (it ends up in the trail)."""
    if value and len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value):
        return value
    return ""


def _client_ip(request: HttpRequest) -> str:
    # X-Forwarded-For counts only as far as configured proxies vouch for it (RAG_TRUSTED_PROXIES).
    from rag_platform.process.client_address import client_address

    return client_address(request)
