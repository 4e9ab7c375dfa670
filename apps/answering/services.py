"""Ask a question: search -> prompt -> LLM (streamed) -> answer with citations.

``answer_stream`` is the one implementation; it yields the sources, then the answer's text
as the model generates it, then the finished result. ``ask_question`` consumes it whole.
Every question, refusal and error writes exactly one audit event (and one history row),
when the stream ends: normally, on an LLM failure, or when the client goes away mid-answer
(the generator is closed and its ``finally`` records what was shown so far).
"""

from __future__ import annotations

import time
from contextlib import closing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from apps.answering.llm import Completion, LLMUnavailable, chat_stream
from apps.answering.evidence import stored_sentence_vectors
from apps.answering.models import AskedQuestion
from apps.answering.prompts import PROMPT_VERSION, build_messages, cited_numbers, fit_to_window, select_evidence
from apps.answering.tokens import count_tokens
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Document
from apps.corpus.selectors import ReadAccessWatch
from apps.ingestion.embedding import embed_query
from apps.retrieval.services import RetrievedChunk, chunks_search, search_filter_for

NOT_FOUND_MESSAGE = "Not found in your documents: none of the passages you may read is relevant to this question."
NO_ACCESS_MESSAGE = "You have no collection to search yet. Ask a corpus admin to grant you read access."
DISCONNECTED_MESSAGE = "The answer was interrupted: the browser disconnected before it was complete."
ACCESS_REVOKED_MESSAGE = ("Your access to the sources of this answer was removed while it was being written; "
                          "the answer is withheld.")
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
    history_id: int | None = None

    @property
    def cited(self) -> list[Citation]:
        return [c for c in self.citations if c.cited]


@dataclass(frozen=True)
class AnswerEvent:
    kind: str  # "sources" (data: list[Citation]), "token" (data: str), "done" (data: AnswerResult)
    data: object


def standalone_query(question: str, previous: AskedQuestion | None) -> str:
    """The search query for a question that may refer to the previous one.

    A deterministic rewrite: the earlier question joined to the follow-up ("And for
    5,000 EUR?" searches "How many approvals does a 20,000 EUR transfer need? And for
    5,000 EUR?"). The packaged 135M model cannot rewrite reliably; the earlier question
    carries the topic's keywords and meaning for both halves of the hybrid search."""
    if previous is None:
        return question
    return f"{previous.question.strip()} {question}"[:MAX_QUESTION_CHARACTERS]


def ask_question(
    *, user, question: str, collection_ids: Sequence[int] | None = None, follow_up_of: int | None = None
) -> AnswerResult:
    """Answer from the collections the user may read. Writes exactly one audit event."""
    result = None
    for event in answer_stream(user=user, question=question, collection_ids=collection_ids, follow_up_of=follow_up_of):
        if event.kind == "done":
            result = event.data
    assert isinstance(result, AnswerResult)
    return result


def answer_stream(
    *, user, question: str, collection_ids: Sequence[int] | None = None, follow_up_of: int | None = None
) -> Iterator[AnswerEvent]:
    started = time.monotonic()
    question = question.strip()[:MAX_QUESTION_CHARACTERS]
    picked = [int(i) for i in collection_ids or []]
    previous = (
        AskedQuestion.objects.filter(user=user, id=follow_up_of).first()
        if follow_up_of and getattr(user, "is_authenticated", False) else None
    )
    search_query = standalone_query(question, previous)
    search_filter = search_filter_for(user=user, collection_ids=picked or None)
    searched_ids = [i for i in search_filter.readable_collection_ids if not picked or i in picked]
    payload: dict = {
        "question": question,
        "search_query": search_query,
        "follow_up_of": previous.id if previous else None,
        "collections_requested": picked,
        "collections_searched": searched_ids,
        "permission_filter": search_filter.describe(),
        "model": settings.LLM_MODEL,
        "model_sha256": settings.LLM_MODEL_SHA256,
        "llm_endpoint": settings.LLM_BASE_URL,
        "prompt_version": PROMPT_VERSION,
        "streamed": True,
    }
    citations: list[Citation] = []
    completion = Completion("", settings.LLM_MODEL, None, None, 0)
    recorded: list[AnswerResult] = []

    def finish(outcome: str, answer: str, error: str = "") -> AnswerResult:
        # The passage text and its document version go into the event, so the audit trail
        # shows what was retrieved as it was then, even after a new version replaced it.
        versions = dict(
            Document.objects.filter(id__in={c.source.document_id for c in citations}).values_list("id", "sha256")
        )
        payload.update(
            answer=answer,
            error=error,
            retrieved=[
                {
                    "n": c.number,
                    "chunk_id": c.source.chunk_id,
                    "document_id": c.source.document_id,
                    "document_sha256": versions.get(c.source.document_id, ""),
                    "page": c.source.page_number,
                    "score": c.source.score,
                    "cited": c.cited,
                    "text": c.source.text,
                }
                for c in citations
            ],
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        with transaction.atomic():
            event = audit_record(event_type=EventType.QUESTION_ASKED, outcome=outcome, actor=user, payload=payload)
            history_id = None
            if getattr(user, "is_authenticated", False):
                history_id = AskedQuestion.objects.create(
                    user=user, follow_up_of=previous, question=question, search_query=search_query,
                    answer=answer, outcome=outcome, error=error, collection_ids=picked,
                    citations=[
                        {"n": c.number, "chunk_id": c.source.chunk_id, "document_id": c.source.document_id,
                         "document_title": c.source.document_title, "page": c.source.page_number, "cited": c.cited}
                        for c in citations
                    ],
                    audit_sequence=event.sequence,
                ).id
        result = AnswerResult(outcome, answer, list(citations), event.sequence, error, history_id)
        recorded.append(result)
        return result

    def withheld(shown: list[Citation]) -> list[Citation]:
        # The trail keeps which passages were shown before the grant went; the answer does not.
        payload.update(access_revoked=True, shown_before_revocation=[c.source.chunk_id for c in shown])
        return []

    try:
        if not searched_ids:
            yield AnswerEvent("done", finish(Outcome.NO_ACCESS, NO_ACCESS_MESSAGE))
            return
        query_vector = embed_query(search_query)
        sources = chunks_search(user=user, query=search_query, collection_ids=searched_ids, query_vector=query_vector)
        if not sources:
            yield AnswerEvent("done", finish(Outcome.REFUSED, NOT_FOUND_MESSAGE))
            return
        citations = [Citation(n, s, False) for n, s in enumerate(sources, start=1)]
        access = ReadAccessWatch(user, {s.collection_id for s in sources})  # revoked mid-stream: stop
        yield AnswerEvent("sources", list(citations))
        evidence_sources = sources[: settings.ANSWER_EVIDENCE_SOURCES]
        evidence = select_evidence(
            query_vector,
            evidence_sources,
            sentences=settings.ANSWER_EVIDENCE_SENTENCES,
            vectors_for=stored_sentence_vectors,
        )
        model_question, evidence, prompt_tokens = fit_to_window(
            search_query, evidence, count_tokens=count_tokens,
            window=settings.LLM_CONTEXT_TOKENS, max_answer_tokens=settings.LLM_MAX_TOKENS,
        )
        evidence_numbers = sorted({e.number for e in evidence})
        payload["evidence"] = [{"n": e.number, "sentence": e.sentence} for e in evidence]
        payload["prompt_tokens_counted"] = prompt_tokens
        try:
            # closing(): a client that goes away also ends the request to vLLM at once.
            with closing(chat_stream(build_messages(model_question, evidence), result=completion)) as tokens:
                for text in tokens:
                    if access.lost():
                        break
                    yield AnswerEvent("token", text)
        except LLMUnavailable as error:
            payload["completion_tokens"] = completion.completion_tokens
            if access.lost(now=True):
                citations = withheld(citations)
                yield AnswerEvent("done", finish(Outcome.DENIED, "", error=ACCESS_REVOKED_MESSAGE))
                return
            yield AnswerEvent("done", finish(Outcome.LLM_ERROR, completion.text.strip(), error=str(error)))
            return
        if access.lost(now=True):  # before the sources are shown again with the answer
            payload["completion_tokens"] = completion.completion_tokens
            citations = withheld(citations)
            yield AnswerEvent("done", finish(Outcome.DENIED, "", error=ACCESS_REVOKED_MESSAGE))
            return
        answer = completion.text.strip()
        # A citation counts only if it names a source the model was shown. When the model
        # writes no usable [n], the answer can only rest on the evidence it was given.
        model_cited = [n for n in cited_numbers(answer, len(sources)) if n in evidence_numbers]
        cited = set(model_cited or evidence_numbers)
        citations = [Citation(n, s, n in cited) for n, s in enumerate(sources, start=1)]
        payload.update(
            citation_method="model" if model_cited else "evidence",
            model=completion.model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            llm_latency_ms=completion.latency_ms,
            first_token_ms=completion.first_token_ms,
        )
        yield AnswerEvent("done", finish(Outcome.ANSWERED, answer))
    except GeneratorExit:
        if not recorded:
            payload["completion_tokens"] = completion.completion_tokens
            finish(Outcome.ERROR, completion.text.strip(), error=DISCONNECTED_MESSAGE)
        raise
    except Exception as error:
        if not recorded:
            finish(Outcome.ERROR, completion.text.strip(), error=f"Internal error: {type(error).__name__}")
        raise
