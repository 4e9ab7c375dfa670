"""Sign-in, sign-out and failed sign-in, written to the audit trail.

Django's auth signals are the one place every sign-in path passes (login view, API, admin),
so these are receivers rather than calls from a service (see STYLE.md: the exception).
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def record_signed_in(sender, request, user, **kwargs) -> None:
    audit_record(event_type=EventType.SIGNED_IN, outcome=Outcome.SUCCESS, actor=user)


@receiver(user_logged_out, dispatch_uid="audit_signed_out")
def record_signed_out(sender, request, user, **kwargs) -> None:
    audit_record(event_type=EventType.SIGNED_OUT, outcome=Outcome.SUCCESS, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def record_sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django already masks the password in ``credentials``; keep only the name tried.
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        event_type=EventType.SIGN_IN_FAILED,
        outcome=Outcome.DENIED,
        payload={"username": username, "reason": "wrong user name or password, or inactive account"},
    )
