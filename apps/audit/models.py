"""The audit trail: append-only, hash-chained events.

Each row stores ``hash = sha256(sequence | previous hash | canonical JSON of the event)``.
The application's database role cannot write these tables at all (apps.audit.grants): it
appends events only through the SECURITY DEFINER function ``audit_append`` (migration
0007), which assigns the sequence and previous hash itself. Triggers (0002, 0005) reject
UPDATE, DELETE and TRUNCATE from the owner too, except the two owner-only operations:
retention expiry (``audit_expire``) and the test database flush.
"""

from django.db import models


class EventType(models.TextChoices):
    QUESTION_ASKED = "question.asked", "Question asked"
    COLLECTION_CREATED = "collection.created", "Collection created"
    DOCUMENT_UPLOADED = "document.uploaded", "Document uploaded"
    DOCUMENT_INDEXED = "document.indexed", "Document indexed"
    DOCUMENT_FAILED = "document.failed", "Document failed"
    DOCUMENT_REJECTED = "document.rejected", "Upload refused"
    DOCUMENT_DUPLICATE = "document.duplicate", "Duplicate upload (same bytes)"
    DOCUMENT_VERSION_ADDED = "document.version_added", "New document version"
    DOCUMENT_DELETED = "document.deleted", "Document deleted"
    DOCUMENT_QUARANTINED = "document.quarantined", "Document quarantined"
    USERS_CREATED = "accounts.demo_users_created", "Demo users created"
    SIGNED_IN = "auth.signed_in", "Signed in"
    SIGNED_OUT = "auth.signed_out", "Signed out"
    SIGN_IN_FAILED = "auth.sign_in_failed", "Sign-in failed"
    ACCESS_GRANTED = "access.granted", "Access granted"
    ACCESS_REVOKED = "access.revoked", "Access revoked"
    ROLE_CHANGED = "accounts.role_changed", "Role changed"
    SETTINGS_CHANGED = "settings.changed", "Settings changed"
    AUDIT_VIEWED = "audit.viewed", "Audit trail viewed"
    AUDIT_EXPORTED = "audit.exported", "Audit trail exported"
    AUDIT_VERIFIED = "audit.verified", "Audit trail verified"
    AUDIT_EXPIRED = "audit.retention_expired", "Events removed after retention"
    LEGAL_HOLD_PLACED = "audit.legal_hold_placed", "Legal hold placed"
    LEGAL_HOLD_RELEASED = "audit.legal_hold_released", "Legal hold released"
    ATTESTATION_VIEWED = "attestation.viewed", "Attestation report produced"
    EGRESS_BLOCKED = "egress.blocked", "Outbound connection blocked"
    KEY_ROTATED = "audit.key_rotated", "Audit signing key rotated"
    ERASED = "audit.erased", "Content erased (keys destroyed)"
    REVEALED = "audit.revealed", "Personal data revealed to a reviewer"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    ANSWERED = "answered", "Answered"
    REFUSED = "refused", "Refused: nothing relevant found"
    NO_ACCESS = "no_access", "No readable collection"
    LLM_ERROR = "llm_error", "Model unavailable"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Error"
    DENIED = "denied", "Denied"
    BLOCKED = "blocked", "Blocked"


class AuditEvent(models.Model):
    sequence = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    event_type = models.CharField(max_length=64, choices=EventType.choices, db_index=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, db_index=True)
    # No foreign key: the trail must outlive (and never cascade from) the accounts it names.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_roles = models.JSONField(default=list)
    payload = models.JSONField(default=dict)
    # Request context (apps.audit.context), empty outside a web request.
    event_id = models.UUIDField(unique=True, null=True, editable=False)
    session_hash = models.CharField(max_length=64, blank=True)
    ip_address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    process = models.CharField(max_length=64, blank=True)
    # Set by the database function audit_append (format 2), never by the client.
    db_role = models.CharField(max_length=63, blank=True, editable=False)
    hash_version = models.PositiveSmallIntegerField(default=1, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event_type} {self.outcome}"


class AuditCheckpoint(models.Model):
    """A signed statement about the chain head; also exported as a file to be copied away."""

    number = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    last_sequence = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    previous_digest = models.CharField(max_length=64)
    statement = models.TextField(help_text="Canonical JSON that was signed.")
    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the statement.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, hex.")
    key_id = models.CharField(max_length=64, help_text="sha256 of the raw public key.")

    class Meta:
        ordering = ["-number"]


class AuditTombstone(models.Model):
    """What remains of an event removed after its retention period: its place in the chain."""

    sequence = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expired_by_sequence = models.BigIntegerField(help_text="The audit.retention_expired event.")
    # Format 2: with sequence, previous hash, created_at and event_type these give the hash,
    # so a tombstone's time and type are checked, not taken on trust.
    content_sha256 = models.CharField(max_length=64, blank=True)
    db_role = models.CharField(max_length=63, blank=True)


class LegalHold(models.Model):
    """Events in [starts_at, ends_at] are kept past retention until the hold is released."""

    reason = models.CharField(max_length=500)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    placed_by = models.CharField(max_length=150, blank=True)
    placed_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)


class DataKey(models.Model):
    """A data key that audit content is sealed with (apps.audit.crypto), wrapped by the
    master key, which is a file outside the database (apps.audit.keys).

    ``scope`` ``user``: what one person asked and was answered (``subject_id`` = user id);
    ``anonymous``: the one key of every question asked without an account (subject 0);
    ``document``: the passages of one document version (``subject_id`` = Document id).
    The application role may SELECT and INSERT; a key is destroyed only by the database
    function ``audit_erase`` (migration 0009), which appends the ``audit.erased`` event in the
    same transaction.
    """

    class Scope(models.TextChoices):
        USER = "user", "Person"
        ANONYMOUS = "anonymous", "Anonymous askers"
        DOCUMENT = "document", "Document version"

    scope = models.CharField(max_length=16, choices=Scope.choices)
    subject_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    wrapped = models.BinaryField()
    master_key_id = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "subject_id"], name="audit_datakey_one_per_subject")]


class IntegrityRun(models.Model):
    """The result of one automatic check by the signer, outside the audit events table.

    ``kind`` ``verify``: the scheduled incremental verification (apps.audit.monitoring);
    ``presign``: a discrepancy the checkpointer found before signing (apps.audit.alarms),
    for which it signed nothing. ``statement`` is the canonical JSON of the other fields,
    signed by the signer (signing.STATUS_DOMAIN), so a row the application role inserts
    (it may INSERT and SELECT, no UPDATE or DELETE) shows as unsigned, not as a result.
    """

    class Kind(models.TextChoices):
        VERIFY = "verify", "Automatic verification"
        PRESIGN = "presign", "Check before signing"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField()
    ok = models.BooleanField()
    problems = models.JSONField(default=list)
    from_sequence = models.BigIntegerField(default=0)
    head_sequence = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    events_checked = models.BigIntegerField(default=0)
    statement = models.TextField()
    signature = models.CharField(max_length=128)
    public_key = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
