"""Need-to-know review: what a compliance officer sees of an event's content.

By default every content field (question, answer, passages, evidence, drafts) is shown with
personal data replaced by typed placeholders (apps.privacy.masking.mask_content). A reveal,
for one request, shows it as recorded, except what came from a collection the officer may not
read (apps.audit.access): those passages, the evidence sentences taken from them, and the
quotation and draft when any such passage was retrieved stay masked, with a label saying why.
The views call ``shown_payload`` / ``shown_passages`` and never render ``event.payload``.
"""

from __future__ import annotations

from typing import Any

from apps.audit.access import readable_collection_ids
from apps.privacy.masking import mask_content, mask_text

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


def shown_payload(payload: dict[str, Any], *, user, reveal: bool, passages: list[dict[str, Any]]) -> dict[str, Any]:
    """The payload as this reviewer may see it now."""
    if not reveal:
        return mask_content(payload)
    withheld = withheld_passages(passages, user)
    if not withheld:
        return payload
    shown = dict(payload)
    shown["retrieved"] = [mask_content(r) if r.get("n") in withheld else r for r in payload.get("retrieved") or []]
    shown["evidence"] = [mask_content(e) if isinstance(e, dict) and e.get("n") in withheld else e
                         for e in payload.get("evidence") or []]
    for key in ("quotation", "draft"):  # may quote any retrieved passage
        if isinstance(shown.get(key), str):
            shown[key] = mask_text(shown[key])
    cited = {r.get("n") for r in payload.get("retrieved") or [] if r.get("cited")}
    if cited & set(withheld):  # the answer cites a passage the officer may not read
        shown["answer"] = mask_text(shown["answer"]) if isinstance(shown.get("answer"), str) else shown.get("answer")
        if isinstance(shown.get("grounding"), dict):
            shown["grounding"] = mask_content(shown["grounding"])
    return shown


def list_summary(payload: dict[str, Any]) -> dict[str, str]:
    """The fields the review list shows of an event, masked (the list masks only these: the
    whole payload of 50 question events would cost seconds)."""
    return {key: mask_text(payload[key]) for key in ("question", "file_name", "name")
            if isinstance(payload.get(key), str) and payload[key]}


def shown_passages(passages: list[dict[str, Any]], *, user, reveal: bool) -> list[dict[str, Any]]:
    """The retrieved passages (apps.audit.selectors.passages_as_retrieved) with their text
    masked unless revealed and readable; ``masked`` says why a text is masked ("" if not)."""
    withheld = withheld_passages(passages, user) if reveal else {}
    rows = []
    for p in passages:
        text = p.get("text") or ""
        if reveal and p.get("n") not in withheld:
            rows.append({**p, "masked": ""})
            continue
        masked = mask_text(text)
        label = withheld.get(p.get("n"), "") if reveal else (MASKED if masked != text else "")
        rows.append({**p, "text": masked, "masked": label})
    return rows


def reveal_problem(reason: str) -> str:
    """Why a reveal reason is refused ("" if acceptable)."""
    if len(reason.strip()) < REASON_MIN_CHARACTERS:
        return (f"Type why you need to see the personal data (at least {REASON_MIN_CHARACTERS} characters, "
                "for example the case or request number). The reason is recorded in the audit trail.")
    return ""
