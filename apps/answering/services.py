"""Ask a question: search -> evidence -> answerable? -> LLM (streamed) -> grounding check.

A person gets one of three things and can see which (``AnswerKind``):

* a **verified answer**: the model's answer, every sentence of which cites a passage the
  model was shown and is supported by it (apps.answering.grounding);
* a **quotation**: when the model's answer fails the check (or the model is down), the
  passage sentences that answer, verbatim, with their citation;
* **not stated in your documents**, with the closest passages, when no evidence sentence
  carries what the question asks for (apps.answering.answerability).

``answer_stream`` is the one implementation; it yields the sources, the model's draft as it
is generated (shown marked unverified), then the finished result. ``ask_question`` consumes
it whole. Every question, refusal and error writes exactly one audit event (and one history
row) when the stream ends: normally, on an LLM failure, or when the client goes away.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from django.conf import settings

from apps.answering.answerability import evidence_answers
from apps.answering.evidence import Evidence, rank_evidence, stored_sentence_vectors
from apps.answering.llm import Completion, LLMUnavailable, chat_stream
from apps.answering.models import AnswerKind, AskedQuestion
from apps.answering.profiles import context_window, profile_for
from apps.answering.prompts import (
    NOT_STATED_REPLY,
    PROMPT_VERSION,
    PromptDoesNotFit,
    build_messages,
    fit_to_window,
)
from apps.answering.quotation import quotation_from
from apps.answering.recording import answer_record, question_personal_data
from apps.answering.textnorm import clean_text, content_words
from apps.answering.tokens import count_tokens
from apps.answering.verification import shown_windows, verify_draft
from apps.audit.models import Outcome
from apps.corpus.selectors import ReadAccessWatch
from apps.ingestion.embedding import embed_query
from apps.retrieval.services import RetrievedChunk, chunks_search, search_filter_for

NOT_STATED_MESSAGE = "Not stated in your documents. The closest passages you may read are listed below."
NOT_FOUND_MESSAGE = NOT_STATED_MESSAGE  # the earlier name
NO_ACCESS_MESSAGE = "You have no collection to search yet. Ask a corpus admin to grant you read access."
DISCONNECTED_MESSAGE = "The answer was interrupted: the browser disconnected before it was complete."
EMPTY_QUESTION_MESSAGE = "Type a question: this one is empty."
NO_WORDS_MESSAGE = "Your question has no words to search for (only very common words). Add what you want to know."
QUOTED_BECAUSE_LLM = " The passage that answers is quoted instead."
ACCESS_REVOKED_MESSAGE = ("Your access to the sources of this answer was removed while it was being written; "
                          "the answer is withheld.")
MAX_QUESTION_CHARACTERS = 2000
CLOSEST_PASSAGES = 3


@dataclass(frozen=True)
class Citation:
    number: int
    source: RetrievedChunk
    cited: bool  # the answer cites it as [number]


@dataclass(frozen=True)
class AnswerResult:
    outcome: str
    answer: str
    citations: list[Citation] = field(default_factory=list)
    audit_sequence: int | None = None
    error: str = ""
    history_id: int | None = None
    answer_kind: str = AnswerKind.NONE
    question: str = ""
    reason: str = ""  # why a quotation or "not stated" was shown instead of the model's answer
    draft: str = ""  # the model's unverified text (kept in the audit event)
    grounding_ms: float | None = None

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


def question_problem(question: str) -> str:
    """Why a question cannot be searched at all, or ""."""
    if not question.strip():
        return EMPTY_QUESTION_MESSAGE
    if not content_words(question) and not any(c.isdigit() for c in question):
        return NO_WORDS_MESSAGE
    return ""


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


def _prompt_evidence(profile, ranked: list[Evidence], sources: list[RetrievedChunk]) -> list[Evidence]:
    if profile.name == "capable":  # whole passages, in search order
        return [Evidence(n, s.text) for n, s in enumerate(sources, start=1)]
    return ranked[: profile.evidence_windows]


def answer_stream(
    *, user, question: str, collection_ids: Sequence[int] | None = None, follow_up_of: int | None = None
) -> Iterator[AnswerEvent]:
    started = time.monotonic()
    question = clean_text(question).strip()[:MAX_QUESTION_CHARACTERS]
    picked = [int(i) for i in collection_ids or []]
    previous = (
        AskedQuestion.objects.filter(user=user, id=follow_up_of).first()
        if follow_up_of and getattr(user, "is_authenticated", False) else None
    )
    search_query = standalone_query(question, previous)
    search_filter = search_filter_for(user=user, collection_ids=picked or None)
    searched_ids = [i for i in search_filter.readable_collection_ids if not picked or i in picked]
    profile = profile_for()
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
        "prompt_profile": profile.name,
        "streamed": True,
        # Counts by type of the personal data the question names (never the values); None: off.
        "personal_data": question_personal_data(question),
    }
    citations: list[Citation] = []
    completion = Completion("", settings.LLM_MODEL, None, None, 0)
    recorded: list[AnswerResult] = []

    def finish(outcome: str, kind: str, answer: str, *, error: str = "", reason: str = "",
               grounding_ms: float | None = None) -> AnswerResult:
        payload.update(latency_ms=int((time.monotonic() - started) * 1000), reason=reason,
                       draft=completion.text.strip())
        sequence, history_id = answer_record(
            user=user, outcome=outcome, answer_kind=kind, answer=answer, error=error, question=question,
            search_query=search_query, previous=previous, picked=picked, citations=citations, payload=payload,
        )
        result = AnswerResult(outcome, answer, list(citations), sequence, error, history_id, kind, question,
                              reason, completion.text.strip(), grounding_ms)
        recorded.append(result)
        return result

    def cite(numbers) -> None:
        nonlocal citations
        citations = [Citation(c.number, c.source, c.number in numbers) for c in citations]

    def withheld() -> AnswerResult:
        # The trail keeps which passages were shown before the grant went; the answer does not.
        nonlocal citations
        payload.update(access_revoked=True, shown_before_revocation=[c.source.chunk_id for c in citations],
                       completion_tokens=completion.completion_tokens)
        citations = []
        return finish(Outcome.DENIED, AnswerKind.NONE, "", error=ACCESS_REVOKED_MESSAGE)

    try:
        if not searched_ids:
            yield AnswerEvent("done", finish(Outcome.NO_ACCESS, AnswerKind.NONE, NO_ACCESS_MESSAGE))
            return
        problem = question_problem(question)
        if problem:
            yield AnswerEvent("done", finish(Outcome.REJECTED, AnswerKind.NONE, problem, reason=problem))
            return
        query_vector = embed_query(search_query)
        sources = chunks_search(user=user, query=search_query, collection_ids=searched_ids, query_vector=query_vector)
        if not sources:
            closest = chunks_search(user=user, query=search_query, collection_ids=searched_ids,
                                    query_vector=query_vector, k=CLOSEST_PASSAGES, max_distance=None)
            citations = [Citation(n, s, False) for n, s in enumerate(closest, start=1)]
            yield AnswerEvent("done", finish(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                                             reason="no passage is close enough to the question"))
            return
        citations = [Citation(n, s, False) for n, s in enumerate(sources, start=1)]
        access = ReadAccessWatch(user, {s.collection_id for s in sources})  # revoked mid-stream: stop
        yield AnswerEvent("sources", list(citations))
        ranked = rank_evidence(search_query, query_vector, sources[: settings.ANSWER_EVIDENCE_SOURCES],
                               vectors_for=stored_sentence_vectors)
        payload["evidence"] = [{"n": e.number, "sentence": e.sentence, "score": e.score} for e in ranked[:5]]
        answerability = evidence_answers(question, ranked, [s.text for s in sources])
        payload["answerability"] = answerability.as_audit()
        if not answerability.answerable:
            yield AnswerEvent("done", finish(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                                             reason=answerability.reason))
            return
        quotation = quotation_from(ranked, question)
        payload["quotation"] = quotation.text if quotation else ""

        def quote(outcome: str, reason: str, error: str = "", grounding_ms: float | None = None) -> AnswerResult:
            cite({quotation.number})
            return finish(outcome, AnswerKind.QUOTATION, quotation.text, error=error, reason=reason,
                          grounding_ms=grounding_ms)

        evidence = _prompt_evidence(profile, ranked, sources)
        try:
            window = context_window()
            model_question, evidence, prompt_tokens = fit_to_window(
                question, evidence, count_tokens=count_tokens, window=window,
                max_answer_tokens=settings.LLM_MAX_TOKENS, profile=profile.name,
            )
        except PromptDoesNotFit as error:
            yield AnswerEvent("done", quote(Outcome.LLM_ERROR, str(error), error=f"{error}.{QUOTED_BECAUSE_LLM}"))
            return
        payload.update(prompt_tokens_counted=prompt_tokens, context_window=window,
                       prompt_evidence=[{"n": e.number, "sentence": e.sentence} for e in evidence])
        try:
            # closing(): a client that goes away also ends the request to vLLM at once.
            messages = build_messages(model_question, evidence, profile.name)
            with closing(chat_stream(messages, result=completion)) as tokens:
                for text in tokens:
                    if access.lost():
                        break
                    yield AnswerEvent("token", text)
        except LLMUnavailable as error:
            payload["completion_tokens"] = completion.completion_tokens
            if access.lost(now=True):
                yield AnswerEvent("done", withheld())
                return
            yield AnswerEvent("done", quote(Outcome.LLM_ERROR, "the language model did not answer",
                                            error=f"{error}{QUOTED_BECAUSE_LLM}"))
            return
        if access.lost(now=True):  # before the sources are shown again with the answer
            yield AnswerEvent("done", withheld())
            return
        payload.update(model=completion.model, prompt_tokens=completion.prompt_tokens,
                       completion_tokens=completion.completion_tokens, llm_latency_ms=completion.latency_ms,
                       first_token_ms=completion.first_token_ms, finish_reason=completion.finish_reason)
        draft = completion.text.strip()
        if profile.name == "capable" and draft.upper().startswith(NOT_STATED_REPLY):
            yield AnswerEvent("done", finish(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                                             reason="the model found no answer in the passages"))
            return
        checked = time.perf_counter()
        grounding, reason = verify_draft(
            draft, question=question, windows=shown_windows(evidence), quotation=quotation.text if quotation else "",
            min_overlap=settings.ANSWER_MIN_OVERLAP, cut_off=completion.finish_reason == "length",
            extractive=profile.name == "small",
        )
        grounding_ms = round((time.perf_counter() - checked) * 1000, 3)
        payload.update(grounding=grounding.as_audit(), grounding_ms=grounding_ms)
        if grounding.verified and not reason:
            cite(set(grounding.cited))
            yield AnswerEvent("done", finish(Outcome.ANSWERED, AnswerKind.VERIFIED, draft, grounding_ms=grounding_ms))
        else:
            yield AnswerEvent("done", quote(Outcome.ANSWERED, reason, grounding_ms=grounding_ms))
    except GeneratorExit:
        if not recorded:
            payload["completion_tokens"] = completion.completion_tokens
            finish(Outcome.ERROR, AnswerKind.NONE, "", error=DISCONNECTED_MESSAGE)
        raise
    except Exception as error:
        if not recorded:
            finish(Outcome.ERROR, AnswerKind.NONE, "", error=f"Internal error: {type(error).__name__}")
        raise
