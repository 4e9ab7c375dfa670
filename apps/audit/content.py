"""Which fields of a question event are sealed, under which keys, and how they are read back.

Sealed before hashing (``apps.audit.services`` calls ``seal_question_payload`` for every
``question.asked`` event), so the chain covers the ciphertext and still verifies after a key
is destroyed. The keys (apps.audit.crypto): the question and search query under the asker's
key; a passage's text and its evidence sentences under its document version's key; the
answer, the model's draft, the quotation and every sentence or reason derived from the
passages under the asker's key AND every shown document's key, since an answer can quote a
document. Questions asked without an account share one ``anonymous`` key.

``readable_payloads`` is the one read path (views, exports, API): a copy of each payload with
every sealed field opened, or replaced by an ``ErasedText`` naming the erasure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apps.audit import crypto, keys
from apps.audit.models import AuditEvent, DataKey, EventType

USER, ANONYMOUS, DOCUMENT = DataKey.Scope.USER, DataKey.Scope.ANONYMOUS, DataKey.Scope.DOCUMENT
ASKER_FIELDS = ("question", "search_query")
COMBINED_FIELDS = ("answer", "draft", "quotation", "reason")


class ErasedText(str):
    """Shown where sealed content was: ``erased on DATE by NAME (reason)``; ``erasure`` holds
    the details (or {} if the key is gone without a recorded erasure)."""

    erased = True

    def __new__(cls, erasure: dict[str, Any]):
        if erasure.get("altered"):
            text = "unreadable: the sealed field does not decrypt (altered)"
        elif erasure:
            text = f"erased on {erasure.get('date', '?')} by {erasure.get('by') or 'system'} ({erasure.get('reason', '')})"
        else:
            text = "erased (its key no longer exists)"
        self = super().__new__(cls, text)
        self.erasure = erasure
        return self


def asker_subject(actor_id: int | None) -> tuple[str, int]:
    return (USER, int(actor_id)) if actor_id else (ANONYMOUS, 0)


def seal_question_payload(payload: dict[str, Any], *, actor_id: int | None, using: str = "default",
                          cache: dict | None = None) -> dict[str, Any]:
    """``payload`` with its content fields sealed, and ``enc_keys`` (every key id used, for
    the legal-hold check and erasure look-ups). Fields already sealed are left alone.
    ``cache``: keys already looked up for the same batch of events."""
    retrieved = [r for r in payload.get("retrieved") or [] if isinstance(r, dict)]
    documents = sorted({int(r["document_id"]) for r in retrieved if r.get("document_id")})
    found = keys.ensure_keys([asker_subject(actor_id), *((DOCUMENT, d) for d in documents)], using=using, cache=cache)
    material = {key_id: key for key_id, key in found.values()}
    asker = found[asker_subject(actor_id)][0]
    doc_key = {d: found[(DOCUMENT, d)][0] for d in documents if (DOCUMENT, d) in found}
    gone = object()  # a document deleted meanwhile: its text is not kept at all
    everything = [asker, *doc_key.values()]
    by_number = {r.get("n"): doc_key.get(int(r["document_id"]), gone) for r in retrieved if r.get("document_id")}

    def seal(value: Any, ids: Sequence[Any]) -> Any:
        if value in (None, "") or crypto.is_sealed(value):
            return value
        if gone in ids:
            return None
        return crypto.seal(value, material, [i for i in ids if i is not None] or everything)

    out = dict(payload)
    for name in ASKER_FIELDS:
        if name in out:
            out[name] = seal(out[name], [asker])
    for name in COMBINED_FIELDS:
        if name in out:
            out[name] = seal(out[name], everything)
    out["retrieved"] = [
        {**r, "text": seal(r["text"], [doc_key.get(int(r["document_id"]), gone) if r.get("document_id") else asker])}
        if "text" in r else r for r in payload.get("retrieved") or []]
    if "retrieved" not in payload:
        del out["retrieved"]
    for name in ("evidence", "prompt_evidence"):
        if isinstance(out.get(name), list):
            out[name] = [{**e, "sentence": seal(e.get("sentence"), [by_number.get(e.get("n"))])}
                         if isinstance(e, dict) else e for e in out[name]]
    if isinstance(out.get("answerability"), dict):
        out["answerability"] = {**out["answerability"], "reason": seal(out["answerability"].get("reason"), everything)}
    if isinstance(out.get("grounding"), dict):
        grounding = dict(out["grounding"])
        grounding["reason"] = seal(grounding.get("reason"), everything)
        grounding["sentences"] = [{**s, "sentence": seal(s.get("sentence"), everything),
                                   "reason": seal(s.get("reason"), everything)}
                                  for s in grounding.get("sentences") or []]
        out["grounding"] = grounding
    out["enc_keys"] = sorted(set(everything))
    return out


def _sealed_key_ids(value: Any) -> Iterable[int]:
    if crypto.is_sealed(value):
        yield from (int(i) for i in value["keys"])
    elif isinstance(value, dict):
        for item in value.values():
            yield from _sealed_key_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sealed_key_ids(item)


def erasures_of(key_ids: Iterable[int], *, using: str = "default") -> dict[int, dict[str, Any]]:
    """{key id: {"date", "by", "reason", "sequence"}} from the ``audit.erased`` events, else
    from the ledger (a restored database may lack the event)."""
    ids = set(key_ids)
    found: dict[int, dict[str, Any]] = {}
    if not ids:
        return found
    from django.db.models import Q

    query = Q()
    for key_id in ids:
        query |= Q(payload__key_ids__contains=[key_id])
    for event in AuditEvent.objects.using(using).filter(query, event_type=EventType.ERASED).order_by("sequence"):
        info = {"date": event.created_at.date().isoformat(), "by": event.actor_username,
                "reason": event.payload.get("reason", ""), "sequence": event.sequence}
        for key_id in event.payload.get("key_ids", []):
            if key_id in ids:
                found.setdefault(key_id, info)
    for entry in keys.ledger_entries():
        for key_id in entry.get("key_ids", []):
            if key_id in ids and key_id not in found:
                found[key_id] = {"date": str(entry.get("erased_at", "?"))[:10], "by": entry.get("erased_by", ""),
                                 "reason": entry.get("reason", ""), "sequence": entry.get("sequence")}
    return found


def readable_payloads(events: Sequence[AuditEvent], *, using: str = "default") -> list[dict[str, Any]]:
    """Each event's payload with sealed fields opened or marked erased (two queries in all)."""
    per_event = [set(_sealed_key_ids(event.payload)) for event in events]
    wanted = set().union(*per_event) if per_event else set()
    if not wanted:
        return [event.payload for event in events]
    material = keys.keys_by_id(wanted, using=using)
    gone = wanted - set(material)
    erasures = erasures_of(gone, using=using) if gone else {}

    def open_value(value: Any) -> Any:
        if crypto.is_sealed(value):
            try:
                return crypto.open_sealed(value, material)
            except crypto.ContentUnreadable as error:
                if not error.missing:
                    return ErasedText({"altered": True})
                return ErasedText(next((erasures[i] for i in error.missing if i in erasures), {}))
        if isinstance(value, dict):
            return {k: open_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [open_value(v) for v in value]
        return value

    return [open_value(event.payload) if ids else event.payload for event, ids in zip(events, per_event, strict=True)]
