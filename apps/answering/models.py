"""A user's question history; the audit trail stays the record of what happened, this is
what the user sees again and what a follow-up question refers to."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AnswerKind(models.TextChoices):
    """What the person was shown, and can see labelled."""

    VERIFIED = "verified", "Verified answer"  # every sentence supported by the passage it cites
    QUOTATION = "quotation", "Quotation"  # the passage sentences that answer, verbatim
    NOT_STATED = "not_stated", "Not stated in your documents"
    NONE = "none", "No answer"  # no readable collection, a rejected question, an error


class AskedQuestion(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="asked_questions")
    follow_up_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    question = models.TextField()
    # The standalone query the search used (the question, or for a follow-up the earlier
    # question joined to it: see services.standalone_query).
    search_query = models.TextField()
    answer = models.TextField(blank=True)
    outcome = models.CharField(max_length=32)
    answer_kind = models.CharField(max_length=16, choices=AnswerKind.choices, default=AnswerKind.NONE)
    error = models.TextField(blank=True)
    collection_ids = models.JSONField(default=list)  # the collections the user picked ([] = all readable)
    citations = models.JSONField(default=list)  # [{n, chunk_id, document_id, document_title, page, cited}]
    audit_sequence = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="asked_question_user_recent")]

    def __str__(self) -> str:
        return self.question[:80]
