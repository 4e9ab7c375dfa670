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
