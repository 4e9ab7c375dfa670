"""What the erasure commands share: the ``--by`` officer, looked up once, here."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def officer_named(username: str):
    """The user named by ``--by``: None when not given; CommandError when there is none or
    they may not erase (apps.answering.erasure.may_erase)."""
    if not username:
        return None
    from apps.answering.erasure import may_erase

    actor = get_user_model().objects.filter(username=username).first()
    if actor is None:
        raise CommandError(f"--by: no user named {username!r}")
    if not may_erase(actor):  # the record names them as the officer (security review L7)
        raise CommandError(f"--by: {username!r} is not a compliance officer; only officers may be recorded as erasing")
    return actor
