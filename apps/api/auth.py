"""``Authorization: Bearer <token>`` for the API; the token's use is audited like a session."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from ninja.errors import HttpError
from ninja.security import HttpBearer

from apps.api.services import api_token_authenticate
from apps.audit import context as audit_context_module


class _TokenSession:
    """Stands in for a web session in the audit context: every event written with this
    token carries the same session hash, sha256(secret key | "api-token:<prefix>")."""

    def __init__(self, prefix: str):
        self.session_key = f"api-token:{prefix}"


class TokenAuth(HttpBearer):
    """A usable token holding ``scope`` (apps.api.models.Scope); a valid token without it is
    a 403 that names the scope, not a sign-in failure."""

    def __init__(self, scope: str = "ask") -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token: str):
        found = api_token_authenticate(token)
        if found is None:
            return None
        if self.scope and self.scope not in (found.scopes or []):
            raise HttpError(403, f"This token lacks the “{self.scope}” scope; create one that has it.")
        request.user = found.user
        request.api_token = found
        # The audit middleware set the request's context; name the token as its session.
        current = audit_context_module.current_context()
        audit_context_module._current.set(  # reset by the middleware when the request ends
            dataclasses.replace(current, session=_TokenSession(found.prefix), secret=settings.SECRET_KEY)
        )
        return found.user
