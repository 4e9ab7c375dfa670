"""Asking the audit signer (the one process with the signing key, queue ``audit``) to sign.

The names of the signer's tasks live here, not in apps.audit.tasks, so that nothing imports a
tasks module (import-linter): senders send by name, and rag_platform.celery_app refuses any
other task in the signer process (SIGNER_TASKS).
"""

from __future__ import annotations

from typing import Any

from celery import current_app

from apps.audit import signing

SIGN_TIMEOUT_SECONDS = 30
SIGNER_TASKS = frozenset({"audit.checkpoint", "audit.verify", "audit.sign_export"})


def sign_export_by_signer(request: dict[str, Any], ranges: list[list[int]]) -> tuple[str, str, str]:
    """(statement text, signature hex, public key hex) from the signer: in this process if it
    is the signer, else over the broker. Raises SigningKeyUnavailable if no signer answers in
    time (or it refused: its chain check failed, the events are not what was asked)."""
    if signing.is_signer():
        from apps.audit.export_signing import sign_export

        return sign_export(request, ranges)
    # rag_platform's app, made current in every Django process (rag_platform.apps.PlatformConfig).
    app = current_app._get_current_object()
    try:
        if app.main != "rag_platform":
            raise RuntimeError("rag_platform's Celery app is not loaded in this process")
        result = app.send_task("audit.sign_export", args=[request, ranges], queue="audit")
        text, signature, public_hex = result.get(timeout=SIGN_TIMEOUT_SECONDS)
    except Exception as error:  # timeout, broker down, signer without key, refusal
        raise signing.SigningKeyUnavailable(f"the audit signer did not sign: {error}") from None
    return text, signature, public_hex
