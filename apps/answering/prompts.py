"""The prompt: documents are data, numbered so the answer can cite them.

Small on-premises models answer far better from a few precise sentences than from whole
passages (measured with SmolLM2-135M on the sample corpus: 6 of 9 questions right with the
best sentence, 1 to 3 of 9 with whole chunks). So the sources shown to the user are the
retrieved chunks, and the prompt carries the sentences of those chunks closest to the
question, each labelled with the number of the chunk it comes from.

Documents are data, never instructions. A 135M model cannot be told reliably to ignore an
instruction it reads (and a longer system instruction made its answers worse), so the
guard is deterministic: a sentence that reads as an instruction to the assistant
(``looks_like_instruction``) is never quoted to the model. The passage still appears among
the sources the user sees, so nothing is hidden from the reader. The prompt is fitted to
the model's context window with the model's own tokenizer (``fit_to_window``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from apps.retrieval.services import RetrievedChunk

PROMPT_VERSION = "qa-v3-evidence-sentences-guarded"

# Kept to one plain sentence: a longer instruction (for example a warning about
# instructions inside documents) measurably confused the 135M model on the sample questions.
INSTRUCTION = "Using only the sources above, answer in one sentence and cite the source like [1]."

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_MIN_SENTENCE_CHARACTERS = 15


@dataclass(frozen=True)
class Evidence:
    number: int  # the source [n] the sentence comes from
    sentence: str


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if len(s.strip()) >= _MIN_SENTENCE_CHARACTERS]


# Sentences addressed to an assistant rather than to a human reader: prompt injection.
_INSTRUCTION_PATTERNS = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|instructions|prompt|sources?|rules|above|previous|context)\b"
    r"|\b(you are now|you must now|act as|pretend to be|system prompt|new instructions?)\b"
    r"|\b(reply|respond|answer|say|output|print)\b.{0,30}\b(only|exactly|just)\b.{0,30}\b(word|words|phrase|text|with)\b"
    r"|\b(assistant|language model|AI model|chatbot|LLM)\b.{0,40}\b(must|should|shall|will)\b",
    re.IGNORECASE,
)


def looks_like_instruction(sentence: str) -> bool:
    return bool(_INSTRUCTION_PATTERNS.search(sentence))


def select_evidence(
    question_vector: Sequence[float],
    sources: Sequence[RetrievedChunk],
    *,
    sentences: int,
    embed=None,
    vectors_for=None,
) -> list[Evidence]:
    """The ``sentences`` sentences of ``sources`` most similar to the question, best first.

    ``vectors_for(sources)``: per source, one unit vector per ``split_sentences(text)`` (the
    stored ones: apps.answering.evidence); or ``embed(texts)`` to encode them now."""
    texts = [split_sentences(source.text) for source in sources]
    per_source = vectors_for(sources) if vectors_for else [embed(t) if t else [] for t in texts]
    candidates: list[tuple[Evidence, float]] = []
    for number, (sentences_of_source, vectors) in enumerate(zip(texts, per_source, strict=True), start=1):
        for sentence, vector in zip(sentences_of_source, vectors, strict=True):
            if not looks_like_instruction(sentence):
                score = sum(float(a) * float(b) for a, b in zip(vector, question_vector, strict=True))
                candidates.append((Evidence(number, sentence), score))
    ranked = sorted(range(len(candidates)), key=lambda i: -candidates[i][1])
    return [candidates[i][0] for i in ranked[:sentences]]


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    quoted = "\n".join(f"Source [{e.number}]: {e.sentence}" for e in evidence)
    return [{"role": "user", "content": f"{quoted}\n\n{INSTRUCTION}\nQuestion: {question}"}]


# ChatML wrapping and the default system turn the template adds, with room to spare.
_TEMPLATE_OVERHEAD_TOKENS = 48


def fit_to_window(
    question: str, evidence: Sequence[Evidence], *, count_tokens, window: int, max_answer_tokens: int
) -> tuple[str, list[Evidence], int]:
    """The question and the longest prefix of ``evidence`` whose prompt fits ``window`` with
    ``max_answer_tokens`` left for the answer; returns them and the prompt's token count.
    A question too long on its own is cut (by tokens) so the request never overflows."""
    budget = window - max_answer_tokens - _TEMPLATE_OVERHEAD_TOKENS
    kept = list(evidence)
    while True:
        tokens = count_tokens(build_messages(question, kept)[0]["content"])
        if tokens <= budget:
            return question, kept, tokens + _TEMPLATE_OVERHEAD_TOKENS
        if kept:
            kept.pop()
            continue
        excess = tokens - budget
        question = truncate_tokens(question, max(1, len(question) - 4 * excess - 16), count_tokens, budget)
        if count_tokens(build_messages(question, [])[0]["content"]) <= budget:
            return question, [], count_tokens(build_messages(question, [])[0]["content"]) + _TEMPLATE_OVERHEAD_TOKENS


def truncate_tokens(text: str, characters: int, count_tokens, budget: int) -> str:
    while characters > 1 and count_tokens(build_messages(text[:characters], [])[0]["content"]) > budget:
        characters = int(characters * 0.8)
    return text[:characters]


_CITATION = re.compile(r"\[(\d{1,2})\]")


def cited_numbers(answer: str, source_count: int) -> list[int]:
    """The distinct source numbers the answer cites, in order of first citation."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= source_count and number not in seen:
            seen.append(number)
    return seen
