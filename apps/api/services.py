"""Writers for API tokens. Creation and revocation are audited; so is every refused token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.api.models import ApiToken, Scope
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record

TOKEN_PREFIX = "rag_"
MAX_DAYS = 365
PRIVILEGED_ROLES = ("corpus_admin", "compliance_officer")
PRIVILEGED_SCOPES = (Scope.MANAGE, Scope.AUDIT)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the user once; only its hash is stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def max_days_for(user, scopes=()) -> int:
    """The longest lifetime ``user`` may give a token: API_TOKEN_PRIVILEGED_MAX_DAYS (30) for
    corpus admins, compliance officers, staff accounts and tokens that manage or export the
    trail; MAX_DAYS otherwise. A stolen privileged token stops working sooner."""
    privileged = (user.is_superuser or user.is_staff or set(scopes) & set(PRIVILEGED_SCOPES)
                  or user.groups.filter(name__in=PRIVILEGED_ROLES).exists())
    return min(settings.API_TOKEN_PRIVILEGED_MAX_DAYS, MAX_DAYS) if privileged else MAX_DAYS


def api_token_create(*, user, name: str, days: int = 90, scopes=(Scope.ASK,)) -> IssuedToken:
    """A token for ``user`` with ``scopes`` (apps.api.models.Scope). The caller has made the
    person re-authenticate (apps.api.views). Raises ValueError for an unknown scope, the audit
    scope without the compliance role, or a lifetime over ``max_days_for``."""
    scopes = sorted({str(scope) for scope in scopes})
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise ValueError(f"Choose the token's scopes among {', '.join(Scope.values)}.")
    if Scope.AUDIT in scopes and not user.has_perm("audit.view_auditevent"):
        raise ValueError("Only compliance officers may give a token the audit scope.")
    limit = max_days_for(user, scopes)
    if not 1 <= days <= limit:
        raise ValueError(f"A token lives between 1 and {limit} days.")
    name = (name or "").strip()[:100] or "unnamed"
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=secret[: len(TOKEN_PREFIX) + 8], key_hash=hash_secret(secret),
            expires_at=timezone.now() + timedelta(days=days), scopes=scopes,
        )
        audit_record(event_type=EventType.ACCESS_GRANTED, outcome=Outcome.SUCCESS, actor=user,
                     payload={"api_token": token.prefix, "name": name, "expires_at": token.expires_at.isoformat(),
                              "scopes": scopes})
    return IssuedToken(token, secret)


def api_tokens_revoke_all(*, user, reason: str) -> int:
    """Stop every usable token of ``user`` (a password change, a role removed, the account
    disabled: apps.api.signals), in one audited statement. Returns how many."""
    with transaction.atomic():
        live = ApiToken.objects.select_for_update().filter(user_id=user.pk, revoked_at__isnull=True)
        prefixes = list(live.values_list("prefix", flat=True))
        if prefixes:
            live.update(revoked_at=timezone.now(), revoked_reason=reason[:64])
            audit_record(event_type=EventType.ACCESS_REVOKED, outcome=Outcome.SUCCESS, actor=None,
                         payload={"api_tokens": prefixes, "user_id": user.pk, "username": user.get_username(),
                                  "reason": reason})
    return len(prefixes)


def api_token_revoke(*, token: ApiToken, revoked_by) -> bool:
    with transaction.atomic():
        updated = ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason="revoked")
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
    elif not token.user.is_active:
        reason = "disabled account"
    elif token.revoked_at is not None:
        reason = "revoked token"
    elif token.expires_at <= timezone.now():
        reason = "expired token"
    if reason:  # counted per address, prefix and window (apps.accounts.failures)
        from apps.accounts.failures import auth_failure_record

        prefix = (secret or "")[: len(TOKEN_PREFIX) + 8]
        auth_failure_record(method="api_token", name=prefix, payload={"api_token": prefix, "reason": reason})
        return None
    now = timezone.now()
    # last_used_at to the minute: one write per token per minute, not one per request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
    return token
