"""Writers for API tokens. Creation and revocation are audited; so is every refused token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.api.models import ApiToken
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record

TOKEN_PREFIX = "rag_"
MAX_DAYS = 365


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the user once; only its hash is stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str, days: int = 90) -> IssuedToken:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"A token lives between 1 and {MAX_DAYS} days.")
    name = (name or "").strip()[:100] or "unnamed"
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[: len(TOKEN_PREFIX) + 8], key_hash=hash_secret(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(event_type=EventType.ACCESS_GRANTED, outcome=Outcome.SUCCESS, actor=user,
                     payload={"api_token": token.prefix, "name": name, "expires_at": token.expires_at.isoformat()})
    return IssuedToken(token, secret)


def api_token_revoke(*, token: ApiToken, revoked_by) -> bool:
    with transaction.atomic():
        updated = ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(event_type=EventType.ACCESS_REVOKED, outcome=Outcome.SUCCESS, actor=revoked_by,
                         payload={"api_token": token.prefix, "user_id": token.user_id})
    return bool(updated)


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The usable token for ``secret`` (its user active, not expired, not revoked), else None
    with a sign-in-failed event naming the prefix tried and why."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_secret(secret or "")).first()
    reason = ""
    if token is None:
        reason = "unknown token"
    elif token.revoked_at is not None:
        reason = "revoked token"
    elif token.expires_at <= timezone.now():
        reason = "expired token"
    elif not token.user.is_active:
        reason = "disabled account"
    if reason:
        audit_record(event_type=EventType.SIGN_IN_FAILED, outcome=Outcome.DENIED,
                     payload={"api_token": (secret or "")[: len(TOKEN_PREFIX) + 8], "reason": reason})
        return None
    now = timezone.now()
    # last_used_at to the minute: one write per token per minute, not one per request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
    return token
