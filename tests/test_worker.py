"""The queue path, once, with a real broker and a real Celery worker process."""

import io
import re

import pytest

from apps.audit.services import audit_verify_chain
from apps.corpus.models import Chunk, Document
from apps.ingestion.services import document_upload
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_uploads_are_indexed_or_failed_by_the_worker(worker, collection, corpus_admin):
    good = b"# Laptops\n\nAll laptops use full-disk encryption with a recovery key held by IT.\n"
    bad = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog"  # truncated
    ids = []
    for name, data in [("laptops.md", good), ("scan.pdf", bad)]:
        try:
            result = document_upload(collection=collection, uploaded_by=corpus_admin, name=name, content=io.BytesIO(data), size=len(data))
        except Exception as refused:  # a file refused at upload never reaches the worker
            assert name == "scan.pdf", refused
            continue
        ids.append(result.document.id)

    def finished():
        docs = list(Document.objects.filter(id__in=ids))
        return docs if all(d.status in {Document.Status.INDEXED, Document.Status.FAILED} for d in docs) else None

    docs = {d.title: d for d in wait_until(finished, timeout=240, what="the worker to finish", log=worker)}
    assert docs["laptops.md"].status == Document.Status.INDEXED
    assert Chunk.objects.filter(document=docs["laptops.md"]).exists()
    if "scan.pdf" in docs:
        assert docs["scan.pdf"].status == Document.Status.FAILED and docs["scan.pdf"].failure_reason
    assert "ingest_document" in worker.read_text() and "embed_documents" in worker.read_text()  # the worker, not this process, did the work
    # Both pool processes loaded the parsers and the model at start, and the encoding took its turn.
    wait_until(lambda: worker.read_text().count("embedding model loaded in") == 2, timeout=120, what="both pool processes warm", log=worker)
    assert re.search(r"embedded \d+ chunks of \d+ documents in [\d.]+ s \(waited", worker.read_text())
    assert audit_verify_chain().ok
