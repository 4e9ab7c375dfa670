"""Need-to-know review: what a compliance officer sees of an event's content.

By default every content field (question, answer, passages, evidence, drafts) is shown with
personal data replaced by typed placeholders (apps.privacy.masking.mask_content). A reveal,
for one request, shows it as recorded, except what came from a collection the officer may not
read (apps.audit.access): then everything but the asker's own words, the readable passages
and an answer that cites none of the others stays masked, with a label saying why.
The views call ``shown_payload`` / ``shown_passages`` and never render ``event.payload``.
"""

from __future__ import annotations

from typing import Any

from apps.audit.access import readable_collection_ids
from apps.privacy.masking import mask_content, mask_file_name, mask_text

MASKED = "personal data masked"
NOT_READABLE = "masked even on reveal: you may not read this passage's collection"
UNKNOWN_COLLECTION = "masked even on reveal: this passage's collection is no longer known"
REASON_MIN_CHARACTERS = 8


def _collection_of(passage: dict[str, Any]) -> int | None:
    value = passage.get("collection_id")
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def withheld_passages(passages: list[dict[str, Any]], user) -> dict[Any, str]:
    """Passage number -> why it stays masked on reveal (not readable, or collection unknown)."""
    readable = readable_collection_ids(user)
    out: dict[Any, str] = {}
    for p in passages:
        collection = _collection_of(p)
        if collection is None:
            out[p.get("n")] = UNKNOWN_COLLECTION
        elif collection not in readable:
            out[p.get("n")] = NOT_READABLE
    return out


# On a reveal with a withheld passage, what stays as recorded: the asker's own words (the
# search query is rewritten from their question and the previous one, never from passages).
ASKERS_OWN = ("question", "search_query")
PASSAGE_LISTS = ("retrieved", "evidence", "prompt_evidence")


def shown_payload(payload: dict[str, Any], *, user, reveal: bool, passages: list[dict[str, Any]]) -> dict[str, Any]:
    """The payload as this reviewer may see it now. On a reveal with a passage withheld,
    everything is masked (the draft, quotation, grounding, reasons and answerability may
    all draw on any passage shown to the model, security review M7b) except the asker's
    own words, the passages (and evidence, prompt evidence) of readable collections, and
    the answer when it cites none of the withheld ones."""
    if not reveal:
        return mask_content(payload)
    withheld = withheld_passages(passages, user)
    if not withheld:
        return payload
    shown = mask_content(payload)
    for key in ASKERS_OWN:
        if key in payload:
            shown[key] = payload[key]
    for key in PASSAGE_LISTS:
        if isinstance(payload.get(key), list):
            shown[key] = [item if isinstance(item, dict) and item.get("n") not in withheld else masked
                          for item, masked in zip(payload[key], shown[key], strict=True)]
    cited = {r.get("n") for r in payload.get("retrieved") or [] if isinstance(r, dict) and r.get("cited")}
    if "answer" in payload and not cited & set(withheld):
        shown["answer"] = payload["answer"]
    return shown


def list_summary(payload: dict[str, Any]) -> dict[str, str]:
    """The fields the review list shows of an event, masked (the list masks only these: the
    whole payload of 50 question events would cost seconds)."""
    return {key: (mask_file_name if key == "file_name" else mask_text)(payload[key])
            for key in ("question", "file_name", "name", "title")
            if isinstance(payload.get(key), str) and payload[key]}


def shown_passages(passages: list[dict[str, Any]], *, user, reveal: bool) -> list[dict[str, Any]]:
    """The retrieved passages (apps.audit.selectors.passages_as_retrieved) with their text
    masked unless revealed and readable; ``masked`` says why a text is masked ("" if not)."""
    withheld = withheld_passages(passages, user) if reveal else {}
    rows = []
    for p in passages:
        text, title = p.get("text") or "", p.get("document_title") or ""
        if reveal and p.get("n") not in withheld:
            rows.append({**p, "masked": ""})
            continue
        masked, masked_title = mask_text(text), mask_text(title)  # a title can name a person too
        label = withheld.get(p.get("n"), "") if reveal else (MASKED if (masked, masked_title) != (text, title) else "")
        rows.append({**p, "text": masked, "document_title": masked_title, "masked": label})
    return rows


def reveal_problem(reason: str) -> str:
    """Why a reveal reason is refused ("" if acceptable)."""
    if len(reason.strip()) < REASON_MIN_CHARACTERS:
        return (f"Type why you need to see the personal data (at least {REASON_MIN_CHARACTERS} characters, "
                "for example the case or request number). The reason is recorded in the audit trail.")
    return ""
