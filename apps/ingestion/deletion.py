"""Deleting a document: its rows, chunks, vectors and file, and its passages in the audit trail.

Every version goes: the superseded ones before it (by title) for an ordinary deletion, every
version of the title whatever its status for an erasure (``every_version``). Their data keys are destroyed
in the same transaction (apps.audit.erasure), so the passages shown in earlier answers become
unreadable in the trail and its exports, unless an active legal hold covers an event sealed
with them: then the document is still deleted, the keys are kept, and the deletion events
say so (``passages_kept_for_legal_hold``). ``refuse_on_hold`` (``manage.py erase_document``)
refuses the whole deletion instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count

from apps.audit.erasure import Erasure, ErasureRefused, erase_keys, hold_message, holds_covering, key_ids_of
from apps.audit.models import DataKey, EventType, Outcome
from apps.audit.services import audit_record_many
from apps.corpus.models import Chunk, Document
from apps.ingestion.signals import documents_deleted


@dataclass(frozen=True)
class Deleted:
    """What a deletion removed: the document rows actually deleted (newest first) and the
    ``audit.erased`` event of their keys (None: no key existed, or a hold kept them)."""
    document_ids: list[int]
    erasure: Erasure | None = None


def document_delete(*, document_id: int, actor, reason: str = "", refuse_on_hold: bool = False) -> bool:
    """Remove a document, its chunks and vectors (one transaction, audited), then its file.
    Superseded versions of it go too: a deleted document leaves nothing searchable behind.
    False: no such document. ErasureRefused (nothing deleted) under a hold if ``refuse_on_hold``."""
    return bool(documents_delete(document_id=document_id, actor=actor, reason=reason,
                                 refuse_on_hold=refuse_on_hold).document_ids)


def documents_delete(*, document_id: int, actor, reason: str = "", refuse_on_hold: bool = False,
                     every_version: bool = False) -> Deleted:
    """``document_delete``, saying what went. ``every_version`` (an erasure): every version
    of the title in its collection, whatever its status (an indexed one behind a queued,
    processing or failed newer one included), not only this one and its superseded ones."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(id=document_id).first()
        if document is None:
            return Deleted([])
        versions = Document.objects.select_for_update().filter(collection_id=document.collection_id,
                                                               title=document.title).exclude(id=document.id)
        if not every_version:  # the superseded versions before it (versions are by title): one query
            versions = versions.filter(status=Document.Status.SUPERSEDED, version__lt=document.version)
        victims = [document, *versions.order_by("-version")]
        subjects = [(DataKey.Scope.DOCUMENT, d.id) for d in victims]
        key_ids = key_ids_of(subjects)
        holds = holds_covering(key_ids)
        if holds and refuse_on_hold:
            raise ErasureRefused(hold_message(holds))
        kept = ({"passages_kept_for_legal_hold": [h.id for h in holds]} if holds
                else {"passages_erased": True} if key_ids else {})
        files = [d.file.name for d in victims if d.file]
        counts = dict(Chunk.objects.filter(document__in=victims).values_list("document_id").annotate(n=Count("id")))
        Chunk.objects.filter(document__in=victims).delete()
        audit_record_many([{
            "event_type": EventType.DOCUMENT_DELETED, "outcome": Outcome.SUCCESS, "actor": actor,
            "payload": {"collection_id": victim.collection_id, "document_id": victim.id, "file_name": victim.title,
                        "sha256": victim.sha256, "version": victim.version,
                        "chunks_removed": counts.get(victim.id, 0), **kept,
                        **({"reason": reason[:500]} if reason else {})},
        } for victim in victims])
        deleted = Document.objects.filter(id__in=[d.id for d in victims]).delete()[1].get(Document._meta.label, 0)
        if deleted != len(victims):  # never report what did not happen
            raise RuntimeError(f"deleting document {document_id}: {deleted} of {len(victims)} version rows deleted")
        erasure = None
        if key_ids and not holds:
            erasure = erase_keys(subjects=subjects, actor=actor, reason=reason or "document deleted",
                       what={"scope": DataKey.Scope.DOCUMENT, "collection_id": document.collection_id,
                             "document_ids": [d.id for d in victims], "file_name": document.title,
                             # what a restore of an older backup must delete again (apps.audit.ledger)
                             "documents": [{"id": d.id, "sha256": d.sha256} for d in victims]})
        documents_deleted.send(sender=Document, document_ids=[d.id for d in victims], erased=not holds)
        storage = document.file.storage
        transaction.on_commit(lambda: [storage.delete(name) for name in files])
    return Deleted([d.id for d in victims], erasure)
