"""Personal data at ingest: each parsed chunk is screened (apps.privacy) in the parse
worker, after the sandboxed child returns it and before the drafts are stored, and the
collection's policy is applied:

* ``index``: stored as parsed; the counts are recorded.
* ``mask``: each chunk's text and section title are stored with ``<PERSON>``, ``<EMAIL_ADDRESS>``...
  in place of the values, so search, the model, answers and passages never see them. Tables'
  HTML copies are dropped (the masked text keeps their cells). The uploaded file is unchanged.
* ``refuse``: the document fails with a message naming what was found.

The counts by type of distinct values (never the values) go on ``Document.pii_summary`` and
into the indexed event: a name mentioned ten times, or repeated in two overlapping chunks, is one. ``RAG_PII_DETECTION=0`` skips detection for ``index`` collections only: a ``mask`` or
``refuse`` collection is always screened, or its policy would silently not hold.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)

INDEX, MASK, REFUSE = "index", "mask", "refuse"


@dataclass(frozen=True)
class Screened:
    drafts: list[dict]
    summary: dict[str, int] | None  # None: not screened
    refusal: str = ""
    seconds: float = 0.0


def refusal_message(counts: dict[str, int]) -> str:
    from apps.privacy.kinds import describe

    return (f"Refused: this collection does not accept personal data; found {describe(counts)}. "
            "Remove it from the file and upload it again, or ask a manager of the collection to "
            "choose the “mask” policy.")


def _value(text: str, finding) -> str:
    """A finding's value, normalised, so a value repeated in a document (or in the overlap of
    two chunks) is counted once: "GB82 WEST 1234..." and "gb82west1234..." are one IBAN."""
    return "".join(text[finding.start:finding.end].split()).casefold()


def screen_drafts(drafts: list[dict], policy: str) -> Screened:
    """Apply ``policy`` to one document's parsed drafts (the dicts the embed step reads)."""
    if policy == INDEX and not settings.PII_DETECTION:
        return Screened(drafts, None)
    from apps.privacy.detection import find_many
    from apps.privacy.kinds import ENTITY_TYPES
    from apps.privacy.masking import mask_findings

    started = time.monotonic()
    texts = [d.get("text") or "" for d in drafts]
    titles = [d.get("section_title") or "" for d in drafts]
    text_findings = find_many(texts)
    # A title is screened on its own where the chunk's text does not repeat it.
    title_findings = find_many([t if t and t not in text else "" for t, text in zip(titles, texts)])
    seen: set[tuple[str, str]] = set()  # (type, value): held in memory only, never stored
    for text, found in zip(texts + titles, text_findings + title_findings):
        seen |= {(f.entity_type, _value(text, f)) for f in found}
    out = drafts
    if policy == MASK:
        out = []
        masked_titles: dict[str, str] = {}
        for draft, text, title, found, title_found in zip(drafts, texts, titles, text_findings, title_findings):
            if title and title not in masked_titles:
                masked_titles[title] = mask_findings(title, title_found or find_many([title])[0])
            masked = {**draft, "text": mask_findings(text, found), "section_title": masked_titles.get(title, title)}
            if (draft.get("metadata") or {}).get("table_html"):
                masked["metadata"] = {k: v for k, v in draft["metadata"].items() if k != "table_html"}
            out.append(masked)
    totals: dict[str, int] = {}
    for entity_type, _ in seen:
        totals[entity_type] = totals.get(entity_type, 0) + 1
    summary = {t: totals[t] for t in ENTITY_TYPES if totals.get(t)}
    seconds = time.monotonic() - started
    if policy == REFUSE and summary:
        return Screened([], summary, refusal_message(summary), seconds)
    return Screened(out, summary, "", seconds)
