"""Writing down what a question got: one audit event and one history row, in one transaction.

The passage text and its document version go into the event, so the audit trail shows what
was retrieved as it was then, even after a new version replaced it; so do the evidence, the
answerability decision, the model's draft and every sentence's grounding verdict, so an
auditor can see why a person got a verified answer, a quotation or "not stated".
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from apps.answering.models import AskedQuestion
from apps.audit.models import EventType
from apps.audit.services import audit_record
from apps.corpus.models import Document

UNRECORDED_MESSAGE = ("The service's database is unavailable (restarting, or out of disk space), so this question "
                      "could not be answered or recorded. Nothing was shown. Try again in a minute; if it persists, "
                      "tell your operator.")


def answer_record(*, user, outcome: str, answer_kind: str, answer: str, error: str, question: str,
                  search_query: str, previous: AskedQuestion | None, picked: Sequence[int], citations: Sequence,
                  payload: dict) -> tuple[int, int | None]:
    """Append the question's audit event and the asker's history row; returns
    (audit sequence, history id or None for an anonymous asker)."""
    versions = dict(
        Document.objects.filter(id__in={c.source.document_id for c in citations}).values_list("id", "sha256")
    )
    payload.update(
        answer=answer,
        answer_kind=answer_kind,
        error=error,
        retrieved=[
            {
                "n": c.number,
                "chunk_id": c.source.chunk_id,
                "document_id": c.source.document_id,
                # Whose passage it is: the audit views keep it masked from an officer who may not read it.
                "collection_id": c.source.collection_id,
                "document_sha256": versions.get(c.source.document_id, ""),
                "page": c.source.page_number,
                "score": c.source.score,
                "cited": c.cited,
                "text": c.source.text,
            }
            for c in citations
        ],
    )
    with transaction.atomic():
        event = audit_record(event_type=EventType.QUESTION_ASKED, outcome=outcome, actor=user, payload=payload)
        history_id = None
        if getattr(user, "is_authenticated", False):
            history_id = AskedQuestion.objects.create(
                user=user, follow_up_of=previous, question=question, search_query=search_query,
                answer=answer, outcome=outcome, answer_kind=answer_kind, error=error, collection_ids=list(picked),
                citations=[
                    {"n": c.number, "chunk_id": c.source.chunk_id, "document_id": c.source.document_id,
                     "document_title": c.source.document_title, "page": c.source.page_number, "cited": c.cited}
                    for c in citations
                ],
                audit_sequence=event.sequence,
            ).id
    return event.sequence, history_id


def hold_unreached_question(question: str, user, error: BaseException) -> None:
    """The question's event when the database failed before the answering service could start
    (rag_platform.errors): held until the database is back (apps.audit.held)."""
    from apps.audit import held
    from apps.audit.models import Outcome

    held.hold({"event_type": EventType.QUESTION_ASKED, "outcome": Outcome.ERROR, "actor": user,
               "payload": {"question": question[:2000], "answer": "", "error": UNRECORDED_MESSAGE,
                           "reason": "the database failed before the question reached the answering service"}}, error)


def question_personal_data(question: str) -> dict[str, int] | None:
    """What the question names, by type (apps.privacy), for its audit event; None with
    RAG_PII_DETECTION=0. About 3-8 ms for a typical question (docs/benchmarks.md)."""
    if not settings.PII_DETECTION:
        return None
    from apps.privacy.detection import count

    return count(question)
