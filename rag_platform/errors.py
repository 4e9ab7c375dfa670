"""The page for an uncaught error (``handler500``): a database that is away gets a 503 that
says so, not a 500.

A PostgreSQL restart or a full disk surfaces wherever a request first touches the database
(the session, the user, the view), often in middleware, so it is handled here, where Django
sends every uncaught exception. A question asked at that moment cannot reach the answering
service; its audit event is held (apps.audit.held) like one that failed later. Everything
else keeps Django's own 500 page.
"""

from __future__ import annotations

import json
import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

from apps.answering.recording import UNRECORDED_MESSAGE, hold_unreached_question
from apps.audit import held
from apps.audit.context import audit_context, current_context
from apps.audit.middleware import request_context

RETRY_AFTER_SECONDS = "30"
ASK_PATHS = ("/", "/ask/stream/", "/api/v1/ask")


def server_error(request: HttpRequest) -> HttpResponse:
    error = sys.exc_info()[1]
    if error is None or not held.unavailable(error):
        return defaults.server_error(request)
    _hold_unrecorded_question(request, error)
    return unavailable_response(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a session that could not be saved because the database went away while
    the request ran is that outage (503), not the asker's mistake. A streamed question never
    started then (the stream is dropped with the response), so its event is held here."""
    if held.unavailable(exception):
        _hold_unrecorded_question(request, exception)
        return unavailable_response(request)
    return defaults.bad_request(request, exception)


def _hold_unrecorded_question(request: HttpRequest, error: BaseException) -> None:
    """A question this request carried that the answering service did not record: its event,
    held, named by the request's own audit context (this page may be drawn outside it)."""
    if request.method != "POST" or request.path not in ASK_PATHS or getattr(request, "question_recorded", False):
        return
    context = current_context()
    with audit_context(context if context.request_id else request_context(request)):
        hold_unreached_question(_question(request), getattr(request, "_cached_user", None), error)
    request.question_recorded = True  # once per request: a 500 page can meet a 400 on its way out


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": UNRECORDED_MESSAGE}, status=503)
    else:  # no request context: its processors would need the database
        response = HttpResponse(render_to_string("503.html", {"message": UNRECORDED_MESSAGE}), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _question(request: HttpRequest) -> str:
    try:
        if request.content_type == "application/json":
            return str(json.loads(request.body or b"{}").get("question", ""))
        return request.POST.get("question", "")
    except Exception:  # noqa: BLE001 - an unreadable body still gets its event
        return ""
