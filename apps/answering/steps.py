"""The answer path's first steps, each over an ``AnswerTrace`` and returning a ``Decision``:

* ``trace_start``: the question cleaned and cut, the follow-up resolved, what may be searched;
* ``permit``: no readable collection, or a question with nothing to search, ends here;
* ``retrieve``: the permission-filtered hybrid search (nothing close: "not stated" with the
  closest passages);
* ``decide``: evidence ranked, answerability decided, the quotation chosen.

None of them needs the language model (tests/test_answer_steps.py). The rest (prompt,
stream, verify) is in apps.answering.generation.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from apps.answering.answerability import evidence_answers
from apps.answering.evidence import Evidence, rank_evidence, stored_sentence_vectors
from apps.answering.models import AnswerKind, AskedQuestion
from apps.answering.profiles import profile_for
from apps.answering.quotation import quotation_from
from apps.answering.recording import UNRECORDED_MESSAGE, question_personal_data
from apps.answering.textnorm import clean_text, content_words
from apps.answering.trace import CONTINUE, AnswerTrace, Citation, Decision
from apps.audit import held
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


def trace_start(*, user, question: str, collection_ids: Sequence[int] | None = None,
                follow_up_of: int | None = None) -> AnswerTrace:
    """The trace of a new question: cleaned, cut to ``MAX_QUESTION_CHARACTERS``, joined to the
    asker's own earlier question it follows up, with the collections it may search."""
    question = clean_text(question).strip()[:MAX_QUESTION_CHARACTERS]
    picked = [int(i) for i in collection_ids or []]
    previous = (
        AskedQuestion.objects.filter(user=user, id=follow_up_of).first()
        if follow_up_of and getattr(user, "is_authenticated", False) else None
    )
    search_filter = search_filter_for(user=user, collection_ids=picked or None)
    return AnswerTrace(
        user=user, question=question, search_query=standalone_query(question, previous), previous=previous,
        picked=picked, searched_ids=[i for i in search_filter.readable_collection_ids if not picked or i in picked],
        permission_filter=search_filter.describe(), profile=profile_for(),
        personal_data=question_personal_data(question),
    )


def permit(trace: AnswerTrace) -> Decision:
    """No collection the user may read (among those picked), or nothing to search for: the
    fixed message, before any search."""
    if not trace.searched_ids:
        return Decision(Outcome.NO_ACCESS, AnswerKind.NONE, NO_ACCESS_MESSAGE)
    problem = question_problem(trace.question)
    if problem:
        return Decision(Outcome.REJECTED, AnswerKind.NONE, problem, reason=problem)
    return CONTINUE


def retrieve(trace: AnswerTrace) -> Decision:
    """The passages the user may read, closest first, as numbered citations (none cited yet).
    Nothing close enough: "not stated", citing the closest ones regardless of distance."""
    trace.query_vector = embed_query(trace.search_query)
    sources = chunks_search(user=trace.user, query=trace.search_query, collection_ids=trace.searched_ids,
                            query_vector=trace.query_vector)
    if not sources:
        closest = chunks_search(user=trace.user, query=trace.search_query, collection_ids=trace.searched_ids,
                                query_vector=trace.query_vector, k=CLOSEST_PASSAGES, max_distance=None)
        trace.citations = [Citation(n, s, False) for n, s in enumerate(closest, start=1)]
        return Decision(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                        reason="no passage is close enough to the question")
    trace.sources = list(sources)
    trace.citations = [Citation(n, s, False) for n, s in enumerate(sources, start=1)]
    trace.access = ReadAccessWatch(trace.user, {s.collection_id for s in sources})  # revoked mid-stream: stop
    return CONTINUE


def evidence_candidates(*, user, query: str, query_vector, collection_ids: Sequence[int],
                        sources: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """The passages evidence is chosen from: the shown ones, then up to
    ``ANSWER_SAME_DOCUMENT_CHUNKS`` other chunks of the documents they come from, best first by
    the same permission-filtered search restricted to those documents. The sentence that
    answers is often in the right document but another chunk of it (a long page's table, the
    paragraph after the one that matched the question's words)."""
    shown = list(sources[: settings.ANSWER_EVIDENCE_SOURCES])
    extra = settings.ANSWER_SAME_DOCUMENT_CHUNKS
    if not extra or not shown:
        return shown
    documents = list(dict.fromkeys(s.document_id for s in shown))[: settings.ANSWER_SAME_DOCUMENT_DOCUMENTS]
    known = {s.chunk_id for s in sources}
    found = chunks_search(user=user, query=query, collection_ids=collection_ids, document_ids=documents,
                          query_vector=query_vector, k=len(known) + extra, max_distance=None)
    return shown + [c for c in found if c.chunk_id not in known][:extra]


def cite_candidates(sources: Sequence[RetrievedChunk], candidates: Sequence[RetrievedChunk],
                    ranked: Sequence[Evidence], keep: int = 3) -> tuple[list[RetrievedChunk], list[Evidence]]:
    """The shown sources with the extra candidates (numbered after them) whose windows are
    among the best ``keep``, renumbered in that order; windows of the other extras are dropped
    (a window must cite a passage the reader is shown)."""
    known = {s.chunk_id for s in sources}
    numbers = {n: n for n, c in enumerate(candidates, start=1) if c.chunk_id in known}
    added = list(sources)
    for e in ranked[:keep]:
        if e.number not in numbers:
            added.append(candidates[e.number - 1])
            numbers[e.number] = len(added)
    kept = [Evidence(numbers[e.number], e.sentence, e.score) for e in ranked if e.number in numbers]
    return added, kept


def decide(trace: AnswerTrace) -> Decision:
    """Rank the evidence windows of the top sources (and more of their documents); "not
    stated" when none carries what the question asks for (apps.answering.answerability); else
    choose the quotation shown if the model's answer is not verified."""
    candidates = evidence_candidates(user=trace.user, query=trace.search_query, query_vector=trace.query_vector,
                                     collection_ids=trace.searched_ids, sources=trace.sources)
    ranked = rank_evidence(trace.search_query, trace.query_vector, candidates, vectors_for=stored_sentence_vectors)
    sources, trace.ranked = cite_candidates(trace.sources, candidates, ranked)
    if len(sources) > len(trace.sources):
        trace.citations += [Citation(n, s, False) for n, s in enumerate(sources[len(trace.sources):],
                                                                         start=len(trace.sources) + 1)]
        trace.sources = sources
    trace.answerability = evidence_answers(trace.question, trace.ranked, [s.text for s in trace.sources])
    if not trace.answerability.answerable:
        return Decision(Outcome.REFUSED, AnswerKind.NOT_STATED, NOT_STATED_MESSAGE,
                        reason=trace.answerability.reason)
    trace.quotation = quotation_from(trace.ranked, trace.question)
    trace.quotation_chosen = True
    return CONTINUE


def quoted(trace: AnswerTrace, outcome: str, reason: str, *, error: str = "",
           grounding_ms: float | None = None) -> Decision:
    """The quotation instead of the model's answer, citing its passage."""
    quotation = trace.quotation
    return Decision(outcome, AnswerKind.QUOTATION, quotation.text, error=error, reason=reason,
                    grounding_ms=grounding_ms, cite=frozenset({quotation.number}))


def withheld(trace: AnswerTrace) -> Decision:
    """Access to a source went while the answer was written: the trail keeps which passages
    were shown before the grant went; the answer does not."""
    trace.shown_before_revocation = [c.source.chunk_id for c in trace.citations]
    trace.completion_tokens_known = True
    trace.citations = []
    return Decision(Outcome.DENIED, AnswerKind.NONE, "", error=ACCESS_REVOKED_MESSAGE)


def disconnected(trace: AnswerTrace) -> Decision:
    trace.completion_tokens_known = True
    return Decision(Outcome.ERROR, AnswerKind.NONE, "", error=DISCONNECTED_MESSAGE)


def failed(error: Exception) -> Decision:
    if held.unavailable(error):
        return Decision(Outcome.ERROR, AnswerKind.NONE, "", error=UNRECORDED_MESSAGE)
    return Decision(Outcome.ERROR, AnswerKind.NONE, "", error=f"Internal error: {type(error).__name__}")
