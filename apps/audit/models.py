"""The audit trail: append-only, hash-chained events.

Each row stores ``hash = sha256(sequence | previous hash | canonical JSON of the event)``.
Rows are never updated or deleted by the application, and a database trigger (migration
0002) rejects UPDATE and DELETE from anyone, so an edit needs a superuser who disables the
trigger, and then the chain no longer verifies.
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


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    ANSWERED = "answered", "Answered"
    REFUSED = "refused", "Refused: nothing relevant found"
    NO_ACCESS = "no_access", "No readable collection"
    LLM_ERROR = "llm_error", "Model unavailable"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Error"


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
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.event_type} {self.outcome}"
