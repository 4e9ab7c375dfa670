"""Erasing a person or a document everywhere the platform keeps it (GDPR Art. 17, records orders).

The cross-app half of crypto-shredding (apps.audit.erasure destroys keys): this app owns the
question history, the ingestion app the documents, so the orchestration lives here, above
both. A person: their data key is destroyed (every question, search and answer of theirs in
the trail becomes unreadable) and their history rows are deleted. A document: every version
is deleted with its keys (apps.ingestion.deletion), and history answers that showed it are
blanked (``blank_answers_citing``, also run for an ordinary deletion). Both refuse, with
nothing changed, while a legal hold covers the content.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.accounts.roles import COMPLIANCE_OFFICER
from apps.answering.models import AnswerKind, AskedQuestion
from apps.audit.erasure import ErasureRefused, erase_keys
from apps.audit.models import DataKey

ERASED_ANSWER = "Answer erased on {date}: a document it came from was deleted."


@dataclass(frozen=True)
class ErasureDone:
    sequence: int  # the audit.erased event
    key_ids: list[int]
    rows: int  # history rows deleted (person) or documents deleted (document)


def may_erase(user) -> bool:
    """Compliance officers and superusers only."""
    return bool(getattr(user, "is_authenticated", False) and (
        user.is_superuser or user.groups.filter(name=COMPLIANCE_OFFICER).exists()))


def erase_user(*, user, reason: str, actor) -> ErasureDone:
    """Destroy ``user``'s data key (one ``audit.erased`` event) and delete their question
    history; the account itself stays (disable it separately if asked)."""
    with transaction.atomic():
        history = AskedQuestion.objects.filter(user=user)
        rows = history.count()
        erasure = erase_keys(subjects=[(DataKey.Scope.USER, user.pk)], reason=reason, actor=actor,
                             what={"scope": DataKey.Scope.USER, "user_id": user.pk, "username": user.get_username(),
                                   "history_rows_deleted": rows})
        AskedQuestion.objects.filter(follow_up_of__user=user).update(follow_up_of=None)
        history.delete()
    return ErasureDone(erasure.event.sequence, erasure.key_ids, rows)


def erase_document(*, document_id: int, reason: str, actor) -> ErasureDone:
    """Delete every version of the document with its data keys; refused under a legal hold."""
    from apps.ingestion.deletion import documents_delete

    if not (reason or "").strip():
        raise ErasureRefused("An erasure needs a reason (it is recorded in the signed audit trail).")
    # Every version of its title, whatever its status (review M6: an indexed one behind a
    # queued or failed newer version too), in one transaction; refused as a whole under a hold.
    deleted = documents_delete(document_id=document_id, actor=actor, reason=reason.strip(), refuse_on_hold=True,
                               every_version=True)
    if not deleted.document_ids:
        raise ErasureRefused(f"There is no document {document_id} (already deleted?).")
    erasure = deleted.erasure
    return ErasureDone(erasure.event.sequence if erasure else 0, list(erasure.key_ids) if erasure else [],
                       len(deleted.document_ids))


def blank_answers_citing(*, document_ids: list[int], **_kwargs) -> int:
    """``documents_deleted`` receiver: history answers that showed a deleted document lose
    their text and sources and say why (the question, the person's own, stays)."""
    from django.db.models import Q

    if not document_ids:
        return 0
    shown = Q()
    for document_id in document_ids:
        shown |= Q(citations__contains=[{"document_id": document_id}])
    message = ERASED_ANSWER.format(date=timezone.now().date().isoformat())
    return AskedQuestion.objects.filter(shown).update(answer="", citations=[], error=message,
                                                      answer_kind=AnswerKind.NONE)


def reapply_erasures(*, entries: list[dict], using: str = "default", **_kwargs) -> dict[str, int]:
    """``erasures_reapplied`` receiver (``manage.py audit_apply_erasures``, after a restore of
    a backup older than an erasure; security review M5): delete again the history rows of an
    erased person asked before the erasure, and the erased documents (matched by id AND
    sha256, created before it: an id reused after the restore is another document), with
    their chunks, vectors and files, through the ordinary deletion (audited)."""
    from datetime import datetime

    from apps.corpus.models import Document
    from apps.ingestion.deletion import documents_delete

    rows = documents = 0
    for entry in entries:
        try:
            erased_at = datetime.fromisoformat(str(entry.get("erased_at")))
        except ValueError:
            continue
        reason = f"re-applied after a restore: erasure #{entry.get('sequence')} ({entry.get('reason', '')})"[:500]
        users = [int(subject) for scope, subject in entry.get("subjects", []) if scope == DataKey.Scope.USER]
        if users:
            with transaction.atomic(using=using):
                history = AskedQuestion.objects.using(using).filter(user_id__in=users, created_at__lte=erased_at)
                AskedQuestion.objects.using(using).filter(follow_up_of__in=history).update(follow_up_of=None)
                rows += history.delete()[1].get(AskedQuestion._meta.label, 0)
        for recorded in entry.get("documents", []):
            match = Document.objects.using(using).filter(id=recorded.get("id"), sha256=recorded.get("sha256"),
                                                         created_at__lte=erased_at).first()
            if match is not None:
                documents += len(documents_delete(document_id=match.id, actor=None, reason=reason).document_ids)
    return {"history_rows_deleted": rows, "documents_deleted": documents}
