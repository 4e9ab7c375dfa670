"""Uploading and ingesting in tests, through the real services (defined once for every test file).

``upload`` stores one file (``document_upload``: sniffed in the sandbox, saved, audited);
``upload_files`` goes through ``files_upload`` as the views do (a zip becomes its members,
a refusal is an ``UploadRejected`` in the list); ``ingest`` uploads and runs both pipeline
steps in this process, returning the document as stored; ``ingest_one`` does the same for a
file that may be refused at upload.
"""

from __future__ import annotations

import io

from apps.corpus.models import Document
from apps.ingestion.archives import files_upload
from apps.ingestion.services import UploadRejected, document_ingest, document_upload


def upload(collection, user, name: str, data: bytes, size: int | None = None):
    """``document_upload``'s result (``.document``, ``.created``)."""
    return document_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data),
                           size=len(data) if size is None else size)


def upload_document(collection, user, name: str, data: bytes) -> Document:
    return upload(collection, user, name, data).document


def upload_files(collection, user, name: str, data: bytes) -> list:
    return files_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))


def ingest(collection, user, name: str, data: bytes) -> Document:
    document = upload_document(collection, user, name, data)
    document_ingest(document_id=document.id)
    return Document.objects.get(id=document.id)


def ingest_one(collection, user, name: str, data: bytes) -> Document | UploadRejected:
    """One file through ``files_upload`` and both steps; the refusal if it was refused at upload."""
    [result] = upload_files(collection, user, name, data)
    if isinstance(result, UploadRejected):
        return result
    document_ingest(document_id=result.document.id)
    return Document.objects.get(id=result.document.id)
