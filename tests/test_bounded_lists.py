"""Bounded work (issue 13): lists come in pages and say when they are cut; the API's
collection list, deleting a version chain and storing a batch of new versions cost a
fixed number of queries, not a few per item."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.corpus.models import Document
from apps.ingestion import embed_step, parse_step
from apps.ingestion.deletion import document_delete
from apps.ingestion.services import document_ingest
from tests.access_helpers import bearer
from tests.factories import CollectionFactory
from tests.uploads import upload_document as _upload

pytestmark = pytest.mark.django_db


def _rows(collection, n: int, prefix: str = "doc") -> list[Document]:
    return Document.objects.bulk_create([
        Document(collection=collection, title=f"{prefix}-{i:04}.txt", sha256=f"{i:064x}", size_bytes=10,
                 file_type=".txt", status=Document.Status.INDEXED, file=f"{collection.id}/{i}")
        for i in range(n)
    ])


def test_the_collection_page_shows_one_page_of_documents(client, collection, corpus_admin):
    _rows(collection, 60)
    client.force_login(corpus_admin)
    first = client.get(reverse("corpus:collection_detail", args=[collection.id])).content.decode()
    assert first.count("<td>doc-") == 50 and "Documents 1–50 of 60" in first and "?page=2" in first
    second = client.get(reverse("corpus:collection_detail", args=[collection.id]), {"page": 2}).content.decode()
    assert second.count("<td>doc-") == 10 and "Documents 51–60 of 60" in second


def test_api_lists_are_paged_and_say_when_they_are_cut(collection, corpus_admin):
    _rows(collection, 3)
    api = bearer(corpus_admin)
    url = f"/api/v1/collections/{collection.id}/documents"
    first = api.get(url, {"limit": 2})
    assert first.status_code == 200 and len(first.json()) == 2
    assert first["X-Total-Count"] == "3" and "offset=2" in first["Link"] and 'rel="next"' in first["Link"]
    rest = api.get(url, {"limit": 2, "offset": 2})
    assert len(rest.json()) == 1 and rest["X-Total-Count"] == "3" and "Link" not in rest
    for path in ("/api/v1/collections", f"/api/v1/collections/{collection.id}/grants", "/api/v1/tokens"):
        response = api.get(path, {"limit": 1})
        assert response.status_code == 200 and len(response.json()) == 1 and int(response["X-Total-Count"]) >= 1, path
    assert api.get(url, {"limit": 5000}).status_code == 422  # at most 1000 a page


def test_the_api_collection_list_costs_the_same_for_3_or_12_collections(corpus_admin):
    api = bearer(corpus_admin)

    def queries_for(n: int) -> int:
        for _ in range(n - len(api.get("/api/v1/collections").json())):
            CollectionFactory(created_by=corpus_admin)
        with CaptureQueriesContext(connection) as captured:
            assert len(api.get("/api/v1/collections").json()) == n
        return len(captured.captured_queries)

    assert queries_for(3) == queries_for(12)


def test_deleting_a_version_chain_costs_the_same_for_2_or_6_versions(collection, corpus_admin, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "documents"

    def chain(title: str, versions: int) -> Document:
        latest = None
        for v in range(versions):
            latest = _upload(collection, corpus_admin, title, f"{title} version {v}\n".encode())
        Document.objects.filter(title=title).exclude(id=latest.id).update(status=Document.Status.SUPERSEDED)
        return latest

    counts = []
    for title, versions in (("short.txt", 2), ("long.txt", 6)):
        latest = chain(title, versions)
        with CaptureQueriesContext(connection) as captured:
            assert document_delete(document_id=latest.id, actor=corpus_admin)
        assert not Document.objects.filter(title=title).exists()
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_storing_a_batch_of_new_versions_costs_the_same_for_2_or_5_documents(collection, corpus_admin, settings, tmp_path,
                                                                              django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path / "documents"

    def store_new_versions(n: int, prefix: str) -> int:
        for i in range(n):
            document_ingest(document_id=_upload(collection, corpus_admin, f"{prefix}-{i}.txt", f"{prefix} {i} first.\n".encode()).id)
        fresh = [_upload(collection, corpus_admin, f"{prefix}-{i}.txt", f"{prefix} {i} second.\n".encode()) for i in range(n)]
        with django_capture_on_commit_callbacks(execute=False):
            for document in fresh:
                parse_step.document_parse(document_id=document.id, task_id=f"parse-{prefix}")
            batch = embed_step._claim_embed_batch(f"embed-{prefix}", first=fresh[0].id)
        assert sorted(batch) == sorted(d.id for d in fresh)
        drafts = dict(Document.objects.filter(id__in=batch).values_list("id", "draft_chunks"))
        jobs = [(i, drafts[i], [[0.1] * 384] * len(drafts[i]), 0.0) for i in batch]
        with CaptureQueriesContext(connection) as captured:
            embed_step.documents_store_chunks(task_id=f"embed-{prefix}", batch=jobs)
        assert Document.objects.filter(id__in=batch, status=Document.Status.INDEXED).count() == n
        assert Document.objects.filter(title__startswith=prefix, status=Document.Status.SUPERSEDED).count() == n
        return len(captured.captured_queries)

    assert store_new_versions(2, "two") == store_new_versions(5, "five")
