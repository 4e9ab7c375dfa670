"""The read side of answering: a person's question history, as they may see it now."""

from __future__ import annotations

from apps.answering.models import AskedQuestion
from apps.corpus.selectors import readable_document_ids

HIDDEN_MESSAGE = "Answer hidden: you may no longer read the documents it came from."


def question_history(user, limit: int) -> list[AskedQuestion]:
    """``user``'s latest questions; an answer whose sources come from a document they may no
    longer read (grant revoked, document deleted) keeps its question but loses its answer and
    sources (``answer_hidden``), so the history never outlives access (one query for all)."""
    questions = list(AskedQuestion.objects.filter(user=user)[:limit])
    cited = {c["document_id"] for q in questions for c in q.citations or [] if c.get("document_id")}
    readable = readable_document_ids(user, cited)
    for question in questions:
        sources = {c["document_id"] for c in question.citations or [] if c.get("document_id")}
        question.answer_hidden = not sources <= readable
        if question.answer_hidden:
            question.answer, question.citations, question.error = "", [], HIDDEN_MESSAGE
    return questions
