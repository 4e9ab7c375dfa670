"""Zip archives of documents: checked whole (bomb, traversal), then each member is one upload."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from apps.ingestion.parse_settings import parse_tuning
from apps.ingestion.parsing import ParseError, check_zip_safe
from apps.ingestion.services import UploadRejected, UploadResult, bulk_enqueue, document_upload


def files_upload(*, collection, uploaded_by, name: str, content: IO[bytes], size: int | None) -> list[UploadResult | UploadRejected]:
    """One file, or every document inside a .zip; each outcome in order (refusals included)."""
    if Path(name).suffix.lower() != ".zip":
        try:
            return [document_upload(collection=collection, uploaded_by=uploaded_by, name=name, content=content, size=size)]
        except UploadRejected as rejection:
            return [rejection]
    limit = settings.UPLOAD_MAX_BYTES
    if size is not None and size > limit:
        return [_refuse(collection, uploaded_by, name, f"{name}: {size:,} bytes is over the upload limit of {limit:,} bytes.")]
    with tempfile.TemporaryFile() as tmp:
        written = 0
        while block := content.read(1024 * 1024):
            written += len(block)
            if written > limit:
                return [_refuse(collection, uploaded_by, name, f"{name}: the archive is over the upload limit of {limit:,} bytes.")]
            tmp.write(block)
        tmp.seek(0)
        try:
            with zipfile.ZipFile(tmp) as archive:
                check_zip_safe(archive, name, archive=True, limits=parse_tuning())
                results: list[UploadResult | UploadRejected] = []
                with bulk_enqueue():
                    for info in archive.infolist():
                        member = PurePosixPath(info.filename)
                        if info.is_dir() or member.parts[0] == "__MACOSX" or member.name.startswith("."):
                            continue
                        with archive.open(info) as handle:
                            try:
                                results.append(document_upload(collection=collection, uploaded_by=uploaded_by,
                                                               name=member.as_posix(), content=handle, size=info.file_size))
                            except UploadRejected as rejection:
                                results.append(rejection)
                return results
        except ParseError as error:
            return [_refuse(collection, uploaded_by, name, f"{name}: {error}")]
        except zipfile.BadZipFile:
            return [_refuse(collection, uploaded_by, name, f"{name}: the zip archive is damaged and cannot be read.")]


def _refuse(collection, uploaded_by, name: str, reason: str) -> UploadRejected:
    from apps.audit.models import EventType, Outcome
    from apps.audit.services import audit_record

    audit_record(event_type=EventType.DOCUMENT_REJECTED, outcome=Outcome.REJECTED, actor=uploaded_by,
                 payload={"collection_id": collection.id, "file_name": name, "reason": reason})
    return UploadRejected(reason)
