"""Account writers."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.accounts.roles import COMPLIANCE_OFFICER, CORPUS_ADMIN, ROLE_LABELS, STAFF, user_roles
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record

DEMO_USERS = {
    "staff.demo": STAFF,
    "admin.demo": CORPUS_ADMIN,
    "compliance.demo": COMPLIANCE_OFFICER,
}


def demo_credentials_file() -> Path:
    return Path(settings.DATA_DIR) / "demo_users.json"


def demo_users_ensure() -> dict[str, str]:
    """Create (or repair) one demo user per role; returns user name -> password.

    Passwords are random, generated once per installation and kept in the data directory
    (mode 0600), so the demo never ships a guessable password.
    """
    path = demo_credentials_file()
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    User = get_user_model()
    created = []
    with transaction.atomic():
        for username, role in DEMO_USERS.items():
            password = stored.get(username) or secrets.token_urlsafe(12)
            stored[username] = password
            user, was_created = User.objects.get_or_create(username=username)
            if was_created or not user.check_password(password):
                user.set_password(password)
                user.is_active = True
                user.save()
            user.groups.add(Group.objects.get(name=role))
            if was_created:
                created.append(username)
        if created:
            audit_record(
                event_type=EventType.USERS_CREATED,
                outcome=Outcome.SUCCESS,
                payload={"users": {name: DEMO_USERS[name] for name in created}},
            )
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return stored


def user_roles_set(*, user, roles: list[str], changed_by, reason: str = "") -> tuple[list[str], list[str]]:
    """Give ``user`` exactly ``roles``; audited with who changed what. Returns (added, removed)."""
    unknown = set(roles) - set(ROLE_LABELS)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        before = set(user_roles(user))
        added = sorted(set(roles) - before)
        removed = sorted(before - set(roles))
        if added:
            user.groups.add(*Group.objects.filter(name__in=added))
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        if added or removed:
            audit_record(
                event_type=EventType.ROLE_CHANGED,
                outcome=Outcome.SUCCESS,
                actor=changed_by,
                payload={"user_id": user.pk, "username": user.get_username(), "added": added,
                         "removed": removed, "roles_before": sorted(before), "reason": reason},
            )
    return added, removed


# --- Single sign-on (apps.accounts.sso) -----------------------------------------------------
class SsoUserRefused(Exception):
    """An identity the provider vouched for that may not sign in here (the reason is the message)."""


def _claimed_roles(claims: dict) -> list[str] | None:
    """The roles OIDC_ROLE_MAP gives the provider's groups, or None when roles are not mapped."""
    claim = getattr(settings, "OIDC_GROUPS_CLAIM", "")
    if not claim:
        return None
    groups = claims.get(claim) or []  # absent: no role (least privilege), not "keep the old ones"
    if isinstance(groups, str):
        groups = [groups]
    mapping = getattr(settings, "OIDC_ROLE_MAP", {})
    return sorted({role for group in groups for role in mapping.get(str(group), [])})


def sso_user_sync(*, issuer: str, subject: str, username: str, claims: dict, create: bool = True):
    """The account bound to the provider's ``(issuer, subject)``, created at the first sign-in
    and updated from the claims at every one.

    The user name claim only names a *new* account: it never selects an existing one
    (OIDC Core §5.7: ``preferred_username`` is neither unique nor stable, so matching on it
    let an identity calling itself ``ADMIN.DEMO`` sign in as ``admin.demo``). An existing
    account of that name is refused until an administrator binds it (``sso_identity_link``);
    superusers never sign in through the provider. With OIDC_GROUPS_CLAIM set the provider
    decides the roles at every sign-in: the mapped roles are set exactly, audited as role
    changes. Returns (user, details for the sign-in event). Raises SsoUserRefused.
    """
    from django.utils import timezone

    from apps.accounts.models import SsoIdentity

    if not issuer or not subject:
        raise SsoUserRefused("the provider's answer names no issuer or subject")
    User = get_user_model()
    if len(username) > User._meta.get_field(User.USERNAME_FIELD).max_length:
        raise SsoUserRefused("the user name from the provider is too long")
    fields = {
        "email": str(claims.get("email") or "")[:254],
        "first_name": str(claims.get("given_name") or "")[:150],
        "last_name": str(claims.get("family_name") or "")[:150],
    }
    roles = _claimed_roles(claims)
    with transaction.atomic():
        identity = (SsoIdentity.objects.select_for_update().select_related("user")
                    .filter(issuer=issuer, subject=subject).first())
        created = identity is None
        if created:
            if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
                raise SsoUserRefused(
                    f"an account named {username!r} already exists and is not bound to this identity; "
                    "an administrator can bind it (manage.py sso_link)")
            if not create:
                raise SsoUserRefused("no account for this identity, and OIDC_CREATE_USER is off")
            user = User.objects.create_user(username, **fields)  # no password: unusable
            identity = SsoIdentity.objects.create(issuer=issuer, subject=subject, user=user)
        else:
            user = identity.user
            if not user.is_active:
                raise SsoUserRefused("disabled account")
            changed = [name for name, value in fields.items() if value and getattr(user, name) != value]
            for name in changed:
                setattr(user, name, fields[name])
            if changed:
                user.save(update_fields=changed)
        if user.is_superuser:
            raise SsoUserRefused("superusers sign in with their password, not through the provider")
        SsoIdentity.objects.filter(id=identity.id).update(last_sign_in_at=timezone.now())
        details = {"account_created": created}
        if roles is not None:
            user_roles_set(user=user, roles=roles, changed_by=None,
                           reason="single sign-on: mapped from the provider's groups claim")
            details["roles_from_provider"] = roles
    return user, details


def sso_identity_link(*, user, issuer: str, subject: str, linked_by=None):
    """Bind an existing account to a provider identity (an administrator's decision, audited
    as an access grant). Refused for superusers and for an identity bound elsewhere."""
    from apps.accounts.models import SsoIdentity

    if user.is_superuser:
        raise SsoUserRefused("superusers cannot sign in through the provider")
    if not issuer or not subject:
        raise SsoUserRefused("an identity needs an issuer and a subject")
    with transaction.atomic():
        identity, created = SsoIdentity.objects.select_for_update().get_or_create(
            issuer=issuer, subject=subject, defaults={"user": user})
        if identity.user_id != user.pk:
            raise SsoUserRefused("this identity is bound to another account")
        if created:
            audit_record(event_type=EventType.ACCESS_GRANTED, outcome=Outcome.SUCCESS, actor=linked_by,
                         payload={"sso_identity": {"issuer": issuer, "subject": subject},
                                  "user_id": user.pk, "username": user.get_username()})
    return identity


def sso_sign_in_failed_record(*, reason: str, username: str = "") -> None:
    """A single sign-on that did not sign anyone in, like a wrong password (auth.sign_in_failed,
    counted per address, name and window: apps.accounts.failures)."""
    from apps.accounts.failures import auth_failure_record

    auth_failure_record(method="oidc", name=username[:150],
                        payload={"method": "oidc", "username": username[:150], "reason": reason[:500]})
