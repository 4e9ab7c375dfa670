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
