"""Deleting a document: its rows, chunks, vectors and file, and its passages in the audit trail.

Every version goes (the superseded ones before it, by title). Their data keys are destroyed
in the same transaction (apps.audit.erasure), so the passages shown in earlier answers become
unreadable in the trail and its exports, unless an active legal hold covers an event sealed
with them: then the document is still deleted, the keys are kept, and the deletion events
say so (``passages_kept_for_legal_hold``). ``refuse_on_hold`` (``manage.py erase_document``)
refuses the whole deletion instead.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit.erasure import ErasureRefused, erase_keys, hold_message, holds_covering, key_ids_of
from apps.audit.models import DataKey, EventType, Outcome
from apps.audit.services import audit_record_many
from apps.corpus.models import Chunk, Document
from apps.ingestion.signals import documents_deleted


def document_delete(*, document_id: int, actor, reason: str = "", refuse_on_hold: bool = False) -> bool:
    """Remove a document, its chunks and vectors (one transaction, audited), then its file.
    Superseded versions of it go too: a deleted document leaves nothing searchable behind.
    False: no such document. ErasureRefused (nothing deleted) under a hold if ``refuse_on_hold``."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(id=document_id).first()
        if document is None:
            return False
        # The superseded versions before it (versions are by title): one query, not one per version.
        older = list(Document.objects.select_for_update().filter(
            collection_id=document.collection_id, title=document.title, status=Document.Status.SUPERSEDED,
            version__lt=document.version).order_by("-version"))
        victims = [document, *older]
        subjects = [(DataKey.Scope.DOCUMENT, d.id) for d in victims]
        key_ids = key_ids_of(subjects)
        holds = holds_covering(key_ids)
        if holds and refuse_on_hold:
            raise ErasureRefused(hold_message(holds))
        kept = ({"passages_kept_for_legal_hold": [h.id for h in holds]} if holds
                else {"passages_erased": True} if key_ids else {})
        files = [d.file.name for d in victims if d.file]
        chunks = Chunk.objects.filter(document__in=victims).delete()[0]
        audit_record_many([{
            "event_type": EventType.DOCUMENT_DELETED, "outcome": Outcome.SUCCESS, "actor": actor,
            "payload": {"collection_id": victim.collection_id, "document_id": victim.id, "file_name": victim.title,
                        "sha256": victim.sha256, "version": victim.version,
                        "chunks_removed": chunks if victim is document else 0, **kept,
                        **({"reason": reason[:500]} if reason else {})},
        } for victim in victims])
        Document.objects.filter(id__in=[d.id for d in victims]).delete()
        if key_ids and not holds:
            erase_keys(subjects=subjects, actor=actor, reason=reason or "document deleted",
                       what={"scope": DataKey.Scope.DOCUMENT, "collection_id": document.collection_id,
                             "document_ids": [d.id for d in victims], "file_name": document.title})
        documents_deleted.send(sender=Document, document_ids=[d.id for d in victims], erased=not holds)
        storage = document.file.storage
        transaction.on_commit(lambda: [storage.delete(name) for name in files])
    return True
