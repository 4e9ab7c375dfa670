"""Sign-in, sign-out and failed sign-in, written to the audit trail.

Django's auth signals are the one place every sign-in path passes (login view, API, admin,
single sign-on), so these are receivers rather than calls from a service (see STYLE.md: the
exception). Failed single sign-ons never reach Django's authenticate(), so the SSO callback
records them itself (apps.accounts.services.sso_sign_in_failed_record).
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_signed_in")
def record_signed_in(sender, request, user, **kwargs) -> None:
    # Single sign-on attaches its details (method "oidc", issuer, subject, account created,
    # roles from the provider) to the user it signs in: apps.accounts.sso.
    payload = getattr(user, "sso_sign_in", None) or {"method": "password"}
    audit_record(event_type=EventType.SIGNED_IN, outcome=Outcome.SUCCESS, actor=user, payload=payload)


@receiver(user_logged_out, dispatch_uid="audit_signed_out")
def record_signed_out(sender, request, user, **kwargs) -> None:
    audit_record(event_type=EventType.SIGNED_OUT, outcome=Outcome.SUCCESS, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def record_sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django already masks the password in ``credentials``; keep only the name tried.
    # Counted per address, name and window; audited once per window (apps.accounts.failures).
    from apps.accounts.failures import auth_failure_record

    username = str(credentials.get("username", ""))[:150]
    auth_failure_record(method="password", name=username, payload={
        "method": "password", "username": username, "reason": "wrong user name or password, or inactive account"})
