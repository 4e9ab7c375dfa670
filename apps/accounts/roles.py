"""The three roles: Django groups created, with their permissions, by migration 0001."""

from __future__ import annotations

STAFF = "staff"
CORPUS_ADMIN = "corpus_admin"
COMPLIANCE_OFFICER = "compliance_officer"

ROLE_LABELS = {
    STAFF: "Staff",
    CORPUS_ADMIN: "Corpus admin",
    COMPLIANCE_OFFICER: "Compliance officer",
}

def user_roles(user) -> list[str]:
    if not getattr(user, "is_authenticated", False):
        return []
    return sorted(user.groups.filter(name__in=ROLE_LABELS).values_list("name", flat=True))
