"""Single sign-on identities bound to accounts."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    """The provider's ``(iss, sub)`` pair (OIDC Core §2: the only stable, unique name for a
    person at a provider) bound to one account here.

    A user name claim (``preferred_username``) is neither unique nor stable, so it never
    decides which account signs in: a first single sign-on creates a new account with its
    identity row, and an existing password account is bound only by an administrator
    (``manage.py sso_link``, audited). Written only by apps.accounts.services."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_account_per_sso_identity")]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} -> {self.user_id}"


class AuthFailureWindow(models.Model):
    """Failed authentications of one kind, from one source, for one name, in one time window
    (AUTH_FAILURE_WINDOW_SECONDS): the first is audited at once, the rest as one event with
    their count when the window closes (apps.accounts.failures). Without it, every wrong
    token or password from anyone appended a permanent event under the trail's global lock."""

    method = models.CharField(max_length=16)  # "password", "api_token", "oidc"
    source = models.CharField(max_length=45)  # the client address (rag_platform.process.client_address)
    name = models.CharField(max_length=150)  # the user name or token prefix tried
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    reported = models.PositiveIntegerField(default=0)  # how many of ``count`` are in the trail
    reason = models.CharField(max_length=500, blank=True)  # the latest

    class Meta:
        constraints = [models.UniqueConstraint(fields=["method", "source", "name", "window_start"],
                                               name="one_failure_window_per_key")]
        indexes = [models.Index(fields=["window_start"], name="auth_failure_window_start"),
                   models.Index(fields=["method", "name", "window_start"], name="auth_failure_name_window")]
