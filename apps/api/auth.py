"""``Authorization: Bearer <token>`` for the API; the token's use is audited like a session."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from ninja.security import HttpBearer

from apps.api.services import api_token_authenticate
from apps.audit import context as audit_context_module


class _TokenSession:
    """Stands in for a web session in the audit context: every event written with this
    token carries the same session hash, sha256(secret key | "api-token:<prefix>")."""

    def __init__(self, prefix: str):
        self.session_key = f"api-token:{prefix}"


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str):
        found = api_token_authenticate(token)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found
        # The audit middleware set the request's context; name the token as its session.
        current = audit_context_module.current_context()
        audit_context_module._current.set(  # reset by the middleware when the request ends
            dataclasses.replace(current, session=_TokenSession(found.prefix), secret=settings.SECRET_KEY)
        )
        return found.user
