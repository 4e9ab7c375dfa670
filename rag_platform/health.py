"""Liveness and readiness endpoints for load balancers, Kubernetes probes and systemd.

/healthz  the process serves requests (touches nothing else).
/readyz   the dependencies answer: database (with the vector extension), broker, egress
          guard installed; the LLM is reported too, but only blocks readiness with
          ?require=llm, so an LLM outage degrades answers (users see a clear message)
          instead of taking every web replica out of service.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Exception as error:  # any failure is a "not ready" answer, never a 500
        detail, ok = f"{type(error).__name__}: {error}", False
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed")
    return f"pgvector {row[0]}"


def check_broker() -> str:
    from rag_platform.celery_app import app

    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def check_llm() -> str:
    import httpx

    with httpx.Client(trust_env=False, timeout=3) as client:
        response = client.get(settings.LLM_BASE_URL.rstrip("/") + "/models")
        response.raise_for_status()
        return ", ".join(m["id"] for m in response.json().get("data", []))


def check_egress_guard() -> str:
    from rag_platform.process import egress

    if not egress.is_installed():
        raise RuntimeError("the egress guard is not installed in this process")
    return "installed"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "egress_guard": _timed(check_egress_guard),
        "llm": _timed(check_llm),
    }
    required = {"database", "broker", "egress_guard"}
    if "llm" in request.GET.getlist("require"):
        required.add("llm")
    ready = all(checks[name]["ok"] for name in required)
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "required": sorted(required), "checks": checks},
        status=200 if ready else 503,
    )
