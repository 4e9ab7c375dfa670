"""Hybrid search: one SQL statement, the permission filter inside it, the three users
(owner, member, outsider), selective filters that still return k results."""

import io
import random

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.corpus.models import Chunk, Document
from apps.ingestion.services import document_ingest, document_upload
from apps.retrieval.services import chunks_search
from tests.factories import CollectionFactory

DOCUMENTS = {
    "payments.md": b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team. "
    b"Invoices are paid within 30 days. Supplier code INV-4471-XK is blocked.\n",
    "travel.md": b"# Travel\n\nTrain travel is reimbursed in second class. Hotel costs up to 150 EUR per night "
    b"are accepted without approval.\n",
}
SECRET = {
    "leave.md": b"# Leave\n\nEmployees receive 28 days of paid annual leave per year. Parental leave is 16 weeks.\n",
    "salaries.md": b"# Salaries\n\nThe salary bands are reviewed every March by the remuneration committee. "
    b"Supplier code INV-4471-XK also appears here.\n",
}
WORDS = (
    "payment approval finance invoice supplier blocked leave annual parental salary band March committee "
    "travel train hotel night reimbursed EUR days weeks employees code review team second class"
).split()


def ingest(collection, user, name, data):
    upload = document_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))
    return document_ingest(document_id=upload.document.id)


@pytest.fixture
def corpus(collection, corpus_admin):
    """``collection`` (owner: corpus_admin, reader: member) and an HR collection only its owner reads."""
    for name, data in DOCUMENTS.items():
        ingest(collection, corpus_admin, name, data)
    hr = CollectionFactory(name="HR", created_by=corpus_admin)
    for name, data in SECRET.items():
        ingest(hr, corpus_admin, name, data)
    return collection, hr


@pytest.mark.django_db
def test_outsider_never_sees_a_chunk_across_many_random_queries(corpus, corpus_admin, member, outsider):
    finance, hr = corpus
    rng = random.Random(4)
    owner_saw_hr = False
    for _ in range(60):
        query = " ".join(rng.sample(WORDS, rng.randint(1, 5)))
        assert chunks_search(user=outsider, query=query, max_distance=None) == [], query
        assert chunks_search(user=outsider, query=query, collection_ids=[finance.id, hr.id], max_distance=None) == []
        member_results = chunks_search(user=member, query=query, max_distance=None, k=10)
        assert member_results and {r.collection_id for r in member_results} == {finance.id}, query
        owner_results = chunks_search(user=corpus_admin, query=query, max_distance=None, k=10)
        owner_saw_hr |= hr.id in {r.collection_id for r in owner_results}
    assert owner_saw_hr


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_member_cannot_reach_an_unreadable_collection_by_naming_it(corpus, member, mode):
    finance, hr = corpus
    assert chunks_search(user=member, query="annual leave salary bands", collection_ids=[hr.id], mode=mode, max_distance=None) == []
    results = chunks_search(user=member, query="supplier code INV-4471-XK", mode=mode, max_distance=None, k=10)
    assert results and all(r.collection_id == finance.id for r in results)


@pytest.mark.django_db
def test_owner_can_restrict_to_one_collection_or_document(corpus, corpus_admin):
    finance, hr = corpus
    results = chunks_search(user=corpus_admin, query="supplier code INV-4471-XK", collection_ids=[hr.id], max_distance=None)
    assert results and {r.collection_id for r in results} == {hr.id}
    travel = Document.objects.get(title="travel.md")
    results = chunks_search(user=corpus_admin, query="approvals", document_ids=[travel.id], max_distance=None)
    assert results and {r.document_id for r in results} == {travel.id}


@pytest.mark.django_db
def test_keyword_half_finds_an_exact_code_and_both_halves_are_fused(corpus, member):
    results = chunks_search(user=member, query="INV-4471-XK", max_distance=None)
    assert results[0].document_title == "payments.md"
    assert results[0].keyword_rank == 1 and results[0].vector_rank is not None


@pytest.mark.django_db
def test_search_is_one_sql_statement_with_the_filter_inside(corpus, member):
    with CaptureQueriesContext(connection) as queries:
        chunks_search(user=member, query="approvals for payments", query_vector=[0.05] * 384)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SET LOCAL", "SAVEPOINT", "RELEASE"))]
    assert len(statements) == 1, statements
    sql = statements[0]
    assert "corpus_collectiongrant" in sql and "<=>" in sql and "@@" in sql


@pytest.mark.django_db
def test_selective_filter_still_returns_k_results(corpus_admin, member):
    """2,000 chunks, the member may read 5% of them: the HNSW iterative scan keeps going
    until k rows pass the filter, and the result equals exact search."""
    big = CollectionFactory(name="Big", created_by=corpus_admin)
    small = CollectionFactory(name="Small", created_by=corpus_admin)
    small.reader_users.add(member)
    rng = np.random.default_rng(7)
    centre = rng.normal(size=384)
    chunks = []
    for collection, count in ((big, 1900), (small, 100)):
        document = Document.objects.create(
            collection=collection, title=f"{collection.name}.txt", file="x", sha256=collection.name, size_bytes=1,
            status=Document.Status.INDEXED,
        )
        for i in range(count):
            vector = centre + rng.normal(scale=1.5, size=384)
            chunks.append(Chunk(document=document, collection=collection, ordinal=i, text=f"chunk {i}",
                                embedding=(vector / np.linalg.norm(vector)).tolist()))
    Chunk.objects.bulk_create(chunks)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE corpus_chunk")
    query = centre / np.linalg.norm(centre)
    results = chunks_search(user=member, query="", query_vector=query.tolist(), k=10, mode="vector", max_distance=None)
    assert len(results) == 10 and {r.collection_id for r in results} == {small.id}
    exact = sorted(
        Chunk.objects.filter(collection=small).values_list("id", "embedding"),
        key=lambda row: -float(np.dot(row[1], query)),
    )[:10]
    assert {r.chunk_id for r in results} == {row[0] for row in exact}
