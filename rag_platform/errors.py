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

RETRY_AFTER_SECONDS = "30"
ASK_PATHS = ("/", "/ask/stream/", "/api/v1/ask")


def server_error(request: HttpRequest) -> HttpResponse:
    error = sys.exc_info()[1]
    if error is None or not held.unavailable(error):
        return defaults.server_error(request)
    if request.method == "POST" and request.path in ASK_PATHS:
        hold_unreached_question(_question(request), getattr(request, "_cached_user", None), error)
    return unavailable_response(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: a session that could not be saved because the database went away while
    the request ran is that outage (503), not the asker's mistake (the question, if any, was
    recorded or held by the answering service already)."""
    if held.unavailable(exception):
        return unavailable_response(request)
    return defaults.bad_request(request, exception)


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
