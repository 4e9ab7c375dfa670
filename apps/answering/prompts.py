"""The prompt: documents are data, numbered so the answer can cite them.

Small on-premises models answer far better from a few precise sentences than from whole
passages (measured with SmolLM2-135M on the sample corpus: 6 of 9 questions right with the
best sentence, 1 to 3 of 9 with whole chunks). So the sources shown to the user are the
retrieved chunks, and the prompt carries the sentences of those chunks closest to the
question, each labelled with the number of the chunk it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from apps.retrieval.services import RetrievedChunk

PROMPT_VERSION = "qa-v2-evidence-sentences"

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


def select_evidence(
    question_vector: Sequence[float],
    sources: Sequence[RetrievedChunk],
    *,
    sentences: int,
    embed,
) -> list[Evidence]:
    """The ``sentences`` sentences of ``sources`` most similar to the question, best first."""
    candidates = [
        Evidence(number, sentence)
        for number, source in enumerate(sources, start=1)
        for sentence in split_sentences(source.text)
    ]
    if not candidates:
        return []
    vectors = embed([c.sentence for c in candidates])
    scores = [sum(a * b for a, b in zip(vector, question_vector, strict=True)) for vector in vectors]
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    return [candidates[i] for i in ranked[:sentences]]


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    quoted = "\n".join(f"Source [{e.number}]: {e.sentence}" for e in evidence)
    return [{"role": "user", "content": f"{quoted}\n\n{INSTRUCTION}\nQuestion: {question}"}]


_CITATION = re.compile(r"\[(\d{1,2})\]")


def cited_numbers(answer: str, source_count: int) -> list[int]:
    """The distinct source numbers the answer cites, in order of first citation."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= source_count and number not in seen:
            seen.append(number)
    return seen
