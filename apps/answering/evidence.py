"""Evidence: the passage sentences that answer a question, ranked, with their neighbours.

``rank_evidence`` scores every evidence sentence of the top sources (``sentences.is_evidence``:
no headings, navigation lines or template residue; no planted instructions) by its cosine
similarity to the question, plus the share of the question's words it contains (weighted
by how rare each word is among the candidates), plus whether it states a figure when the
question asks for one (``answerability.wants_figure``), plus or minus ``ANSWER_NAME_WEIGHT``
for whether it names something the question does not when the question asks who, which or
where (``verification.wants_name``). A question told as a story ("My wife is due in March.
How much ... ?") is compared by a vector that weighs its asked sentences
(``ANSWER_ASKED_VECTOR_WEIGHT``): the story names the topic, the asked sentence the fact.
Each sentence is shown with the
neighbour it needs to be read: the next one when it ends in a colon or is short, the
previous one when it opens with "This", "It" or "They". A table row carries its header.
The weights were chosen on the policy-qa dev set; the last two were measured on both dev sets
(docs/benchmarks.md, issue 22).

Ranking needs a vector per
sentence of the top sources. Encoding them on every question cost ~0.5 s of CPU per
question on a 2-core machine (about 24 sentences), taken from the vLLM server that decodes
on the same cores. The vectors depend only on the chunk's text and the embedding model,
so they are stored with the chunk (``Chunk.sentence_vectors``, float32) the first time the
chunk is a source, and read back afterwards. A chunk whose text changed gets new rows
(new chunks), and a stored value that does not match the text's sentence count (for
example after a change to the sentence splitter) is recomputed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from apps.answering.sentences import (
    is_evidence,
    looks_like_instruction,
    readable,
    sentence_spans,
    split_sentences,
    table_cells,
)
from apps.answering.answerability import asked_part, wants_figure
from apps.answering.verification import wants_name
from apps.answering.textnorm import content_words, measures, names
from apps.corpus.models import Chunk
from apps.ingestion.embedding import embed_passages, embed_query
from apps.retrieval.services import RetrievedChunk


def _decode(blob, count: int) -> np.ndarray | None:
    if blob is None:
        return None
    vectors = np.frombuffer(bytes(blob), dtype=np.float32)
    if vectors.size != count * settings.EMBEDDING_DIMENSIONS:
        return None
    return vectors.reshape(count, settings.EMBEDDING_DIMENSIONS)


def sentence_vectors(sources: Sequence[RetrievedChunk]) -> dict[int, np.ndarray]:
    """chunk id -> one unit vector per sentence of ``split_sentences(chunk.text)``."""
    sentences = {s.chunk_id: split_sentences(s.text) for s in sources}
    stored = dict(Chunk.objects.filter(id__in=list(sentences)).values_list("id", "sentence_vectors"))
    found: dict[int, np.ndarray] = {}
    missing: list[int] = []
    for chunk_id, texts in sentences.items():
        vectors = _decode(stored.get(chunk_id), len(texts))
        if vectors is None:
            missing.append(chunk_id)
        else:
            found[chunk_id] = vectors
    if missing:
        flat = embed_passages([t for chunk_id in missing for t in sentences[chunk_id]])
        offset = 0
        for chunk_id in missing:
            count = len(sentences[chunk_id])
            vectors = np.asarray(flat[offset: offset + count], dtype=np.float32).reshape(count, settings.EMBEDDING_DIMENSIONS)
            offset += count
            found[chunk_id] = vectors
            # A cache fill, not a change of content: a chunk deleted meanwhile updates nothing.
            Chunk.objects.filter(id=chunk_id).update(sentence_vectors=vectors.tobytes())
    return found


def stored_sentence_vectors(sources: Sequence[RetrievedChunk]) -> list[np.ndarray]:
    """``sentence_vectors`` in the order of ``sources`` (what select_evidence takes)."""
    found = sentence_vectors(sources)
    return [found[s.chunk_id] for s in sources]


@dataclass(frozen=True)
class Evidence:
    number: int  # the source [n] the text comes from
    sentence: str  # the sentence with the neighbour it needs, as the reader sees it
    score: float = 0.0


_NEEDS_PREVIOUS = re.compile(r"^(?:this|that|these|those|it|they|such|however|otherwise|also|in that case)\b",
                             re.IGNORECASE)
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
MAX_WINDOW_CHARACTERS = 400


def _window(spans: list[tuple[int, str]], i: int) -> tuple[str, list[int]]:
    """Sentence ``i`` with what it needs to be understood: its table header, the lead-in of
    its list, the sentence before it for "This ..."/"It ...", the next sentence of its
    paragraph, or the items of the list it introduces; and the indices of the sentences used."""
    paragraph, sentence = spans[i]
    text = readable(sentence)
    used = [i]
    if table_cells(sentence):
        # The first row of the run of rows it belongs to is the header.
        start = i
        while start > 0 and spans[start - 1][0] == spans[start][0] - 1 and (
                table_cells(spans[start - 1][1]) or _TABLE_RULE.match(spans[start - 1][1])):
            start -= 1
        header = next((k for k in range(start, i) if table_cells(spans[k][1])), None)
        if header is not None:
            return f"{readable(spans[header][1])} — {text}"[:MAX_WINDOW_CHARACTERS], [header, i]
        return text, used
    if i > 0:
        previous = readable(spans[i - 1][1])
        lead_in = previous.endswith(":") and spans[i - 1][0] != paragraph
        if (lead_in or _NEEDS_PREVIOUS.match(text)) and len(previous) + len(text) < MAX_WINDOW_CHARACTERS:
            if (is_evidence(spans[i - 1][1]) or lead_in) and not looks_like_instruction(previous):
                text = f"{previous} {text}"
                used.insert(0, i - 1)
    j = i + 1
    if text.endswith(":"):  # a lead-in: take the items it introduces
        while j < len(spans) and len(text) + len(spans[j][1]) < MAX_WINDOW_CHARACTERS:
            if not looks_like_instruction(spans[j][1]):
                text = f"{text} {readable(spans[j][1])}"
                used.append(j)
            j += 1
    elif (j < len(spans) and spans[j][0] == paragraph and is_evidence(spans[j][1])
          and not looks_like_instruction(spans[j][1])):
        following = readable(spans[j][1])
        if len(following) + len(text) < 300:
            text = f"{text} {following}"
            used.append(j)
    return text, used


def rank_evidence(
    question: str,
    question_vector: Sequence[float],
    sources: Sequence[RetrievedChunk],
    *,
    vectors_for=None,
    embed=None,
    keyword_weight: float | None = None,
    figure_weight: float | None = None,
) -> list[Evidence]:
    """Every evidence window of ``sources`` (numbered from 1), best first.

    ``vectors_for(sources)``: per source, one unit vector per ``split_sentences(text)`` (the
    stored ones: ``stored_sentence_vectors``); or ``embed(texts)`` to encode them now."""
    keyword_weight = settings.ANSWER_KEYWORD_WEIGHT if keyword_weight is None else keyword_weight
    figure_weight = settings.ANSWER_FIGURE_WEIGHT if figure_weight is None else figure_weight
    spans = [sentence_spans(source.text) for source in sources]
    texts = [[sentence for _, sentence in spans_of_source] for spans_of_source in spans]
    per_source = vectors_for(sources) if vectors_for else [embed(t) if t else [] for t in texts]
    query = np.asarray(question_vector, dtype=np.float32)
    asked_text = asked_part(question)
    if settings.ANSWER_ASKED_VECTOR_WEIGHT and asked_text != question:
        # A question told as a story ("My wife is due in March. How much ... ?"): the sentence
        # that asks weighs more than the story around it.
        w = settings.ANSWER_ASKED_VECTOR_WEIGHT
        query = (1 - w) * query + w * np.asarray(embed_query(asked_text), dtype=np.float32)
        query /= float(np.linalg.norm(query)) or 1.0
    candidates: list[tuple[int, str, float, set[str]]] = []
    for number, (spans_of_source, vectors) in enumerate(zip(spans, per_source, strict=True), start=1):
        if not spans_of_source:
            continue
        similarities = np.asarray(vectors, dtype=np.float32) @ query
        for i, (_, sentence) in enumerate(spans_of_source):
            if not is_evidence(sentence) or looks_like_instruction(sentence):
                continue
            window, _ = _window(spans_of_source, i)
            if looks_like_instruction(window):  # two innocent halves that read as one instruction
                window = readable(sentence)
            candidates.append((number, window, float(similarities[i]), set(content_words(window))))
    asked = set(content_words(question))  # the asked words (story included: it names the topic)
    document_frequency = {w: sum(1 for c in candidates if w in c[3]) for w in asked}
    weights = {w: math.log((len(candidates) + 1) / (document_frequency[w] + 0.5)) for w in asked}
    total = sum(weights.values()) or 1.0
    figure_asked = wants_figure(question)
    name_weight = settings.ANSWER_NAME_WEIGHT if wants_name(question) and not figure_asked else 0.0
    in_question = question.lower()
    ranked: list[Evidence] = []
    seen: set[str] = set()
    for number, window, similarity, stems in candidates:
        if window in seen:  # overlapping chunks repeat sentences: the first source keeps it
            continue
        seen.add(window)
        keyword = sum(weights[w] for w in asked & stems) / total
        figure = (1.0 if measures(window) else -1.0) if figure_asked else 0.0
        score = similarity + keyword_weight * keyword + figure_weight * figure
        if name_weight:  # who / which / where: a window that names something the question does not
            score += name_weight * (1.0 if any(n.lower() not in in_question for n in names(window)) else -1.0)
        ranked.append(Evidence(number, window, round(score, 4)))
    ranked.sort(key=lambda e: -e.score)
    if figure_asked:
        # A question that asks for a figure is answered by a window that states one: those
        # come first, in their order (the rest stay for reading).
        ranked.sort(key=lambda e: not measures(e.sentence))
    return ranked
