"""The quotation shown when a generated answer is not verified: the passage sentences that
answer, verbatim, with their citation. One to three sentences (the best evidence window,
``ANSWER_QUOTE_MAX_CHARACTERS`` at most), never a whole passage: pasting everything would
pass a substring score and fail the reader."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Quotation:
    text: str  # verbatim from the passage (as the reader sees it), ending with its [n]
    number: int


def _asks_two_things(question: str) -> bool:
    return question.count("?") > 1 or bool(re.search(r"\b(?:and|or) (?:who|what|which|where|when|how|whose|is|do|does|can)\b",
                                                       question, re.IGNORECASE))


def quotation_from(ranked: Sequence, question: str = "") -> Quotation | None:
    """The best evidence window; with the runner-up of the same passage when the two overlap
    or the question asks two things (within the length limit). Not always: a runner-up that
    answers nothing asked can be a planted instruction, and a quotation shows it verbatim
    (tests/test_answer_verification.py)."""
    if not ranked:
        return None
    best = ranked[0]
    text = best.sentence.strip()
    limit = settings.ANSWER_QUOTE_MAX_CHARACTERS
    second = next((e for e in ranked[1:3] if e.number == best.number), None)
    if second is not None:
        other = second.sentence.strip()
        if text in other and len(other) <= limit:
            text = other
        elif other not in text and _asks_two_things(question) and len(text) + len(other) + 3 <= limit:
            text = f"{text} … {other}"
    if len(text) > limit:
        cut = text[:limit]
        sentence_end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        text = cut[: sentence_end + 1] if sentence_end > limit // 3 else re.sub(r"\s+\S*$", "", cut) + " …"
    return Quotation(f"{text} [{best.number}]", best.number)
