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


def quotation_from(ranked: Sequence) -> Quotation | None:
    if not ranked:
        return None
    best = ranked[0]
    text = best.sentence.strip()
    limit = settings.ANSWER_QUOTE_MAX_CHARACTERS
    if len(text) > limit:
        cut = text[:limit]
        sentence_end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        text = cut[: sentence_end + 1] if sentence_end > limit // 3 else re.sub(r"\s+\S*$", "", cut) + " …"
    return Quotation(f"{text} [{best.number}]", best.number)
