"""Ask a question: search -> prompt -> LLM -> answer with citations, audited every time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from apps.answering.llm import LLMUnavailable, chat_completion
from apps.answering.prompts import PROMPT_VERSION, build_messages, cited_numbers, select_evidence
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.selectors import collections_readable_by
from apps.ingestion.embedding import embed_passages, embed_query
from apps.retrieval.services import RetrievedChunk, chunks_search

NOT_FOUND_MESSAGE = "Not found in your documents: none of the passages you may read is relevant to this question."
NO_ACCESS_MESSAGE = "You have no collection to search yet. Ask a corpus admin to grant you read access."
MAX_QUESTION_CHARACTERS = 2000


@dataclass(frozen=True)
class Citation:
    number: int
    source: RetrievedChunk
    cited: bool  # the answer text cites it as [number]


@dataclass(frozen=True)
class AnswerResult:
    outcome: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    audit_sequence: int | None = None
    error: str = ""

    @property
    def cited(self) -> list[Citation]:
        return [c for c in self.citations if c.cited]


def ask_question(*, user, question: str, collection_ids: Sequence[int] | None = None) -> AnswerResult:
    """Answer from the collections the user may read. Writes exactly one audit event."""
    started = time.monotonic()
    question = question.strip()[:MAX_QUESTION_CHARACTERS]
    readable_ids = list(collections_readable_by(user).values_list("id", flat=True))
    searched_ids = [i for i in readable_ids if not collection_ids or i in collection_ids]
    payload: dict = {
        "question": question,
        "collections_requested": list(collection_ids or []),
        "collections_searched": searched_ids,
        "model": settings.LLM_MODEL,
        "model_sha256": settings.LLM_MODEL_SHA256,
        "llm_endpoint": settings.LLM_BASE_URL,
        "prompt_version": PROMPT_VERSION,
    }

    def finish(outcome: str, answer: str, citations: list[Citation], error: str = "") -> AnswerResult:
        payload.update(
            answer=answer,
            error=error,
            retrieved=[
                {
                    "n": c.number,
                    "chunk_id": c.source.chunk_id,
                    "document_id": c.source.document_id,
                    "page": c.source.page_number,
                    "score": c.source.score,
                    "cited": c.cited,
                }
                for c in citations
            ],
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        event = audit_record(event_type=EventType.QUESTION_ASKED, outcome=outcome, actor=user, payload=payload)
        return AnswerResult(outcome, answer, citations, event.sequence, error)

    if not searched_ids:
        return finish(Outcome.NO_ACCESS, NO_ACCESS_MESSAGE, [])
    query_vector = embed_query(question)
    sources = chunks_search(user=user, query=question, collection_ids=searched_ids, query_vector=query_vector)
    if not sources:
        return finish(Outcome.REFUSED, NOT_FOUND_MESSAGE, [])
    evidence = select_evidence(
        query_vector,
        sources[: settings.ANSWER_EVIDENCE_SOURCES],
        sentences=settings.ANSWER_EVIDENCE_SENTENCES,
        embed=embed_passages,
    )
    evidence_numbers = sorted({e.number for e in evidence})
    payload["evidence"] = [{"n": e.number, "sentence": e.sentence} for e in evidence]
    try:
        completion = chat_completion(build_messages(question, evidence))
    except LLMUnavailable as error:
        citations = [Citation(n, s, False) for n, s in enumerate(sources, start=1)]
        return finish(Outcome.LLM_ERROR, "", citations, error=str(error))
    # A citation counts only if it names a source the model was shown. When the model
    # writes no usable [n], the answer can only rest on the evidence it was given.
    model_cited = [n for n in cited_numbers(completion.text, len(sources)) if n in evidence_numbers]
    cited = set(model_cited or evidence_numbers)
    citations = [Citation(n, s, n in cited) for n, s in enumerate(sources, start=1)]
    payload.update(
        citation_method="model" if model_cited else "evidence",
        model=completion.model,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        llm_latency_ms=completion.latency_ms,
    )
    return finish(Outcome.ANSWERED, completion.text, citations)
