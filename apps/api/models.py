"""Personal API tokens: stored as a sha256 of the secret, shown once, expiring, revocable."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    """What a token may do; a token holds only the scopes it was minted with (and its user
    must still hold the grants and roles each action needs)."""

    ASK = "ask", "Ask and search"
    INGEST = "ingest", "Upload documents"
    MANAGE = "manage", "Manage collections, grants and documents"
    AUDIT = "audit", "Export the audit trail"


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")
    # The first characters of the secret: shown in lists and the audit trail, never enough to use it.
    prefix = models.CharField(max_length=16, db_index=True)
    # sha256 of the whole secret. The secret has 256 random bits, so a slow hash adds nothing.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Why it stopped: "revoked", "password changed", "role removed", "account disabled".
    revoked_reason = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list)  # Scope values
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"api-token:{self.prefix}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now() and self.user.is_active
