"""What the erasure commands share: the ``--by`` officer, looked up once, here."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def officer_named(username: str):
    """The user named by ``--by``: None when not given; CommandError when there is none."""
    if not username:
        return None
    actor = get_user_model().objects.filter(username=username).first()
    if actor is None:
        raise CommandError(f"--by: no user named {username!r}")
    return actor
