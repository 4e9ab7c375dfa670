"""Hybrid search: one SQL statement, the permission filter inside it, the three users
(owner, member, outsider), selective filters that still return k results."""

import random

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from apps.corpus.models import Chunk, Document
from apps.retrieval.services import chunks_search
from tests.factories import CollectionFactory
from tests.uploads import ingest

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


@pytest.fixture
def big_and_small(corpus_admin, member):
    """2,000 chunks with random vectors around one centre: "Big" (1,900, only its owner
    reads it) and "Small" (100, ``member`` reads it: 5% of the table)."""
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
    return big, small, (centre / np.linalg.norm(centre)).tolist()


def exact_nearest(collection, query, k=10):
    rows = Chunk.objects.filter(collection=collection).values_list("id", "embedding")
    return [row[0] for row in sorted(rows, key=lambda row: (-float(np.dot(row[1], query)), row[0]))[:k]]


def planner_as_at_scale():
    """For the rest of the test's transaction the HNSW index serves "ORDER BY distance
    LIMIT n" as it does at scale (on 2,000 rows the planner would rather sort them all)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")


def vector_half_ran(search) -> str:
    """Which form of the vector half the search statement ran: "hnsw" or "exact"."""
    with CaptureQueriesContext(connection) as queries:
        search()
    statement = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("WITH allowed")][-1]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement)
        plan = [row[0] for row in cursor.fetchall()]
    hnsw = [line for line in plan if "Index Scan using chunk_embedding_hnsw" in line]
    return "hnsw" if hnsw and "never executed" not in hnsw[0] else "exact"


@pytest.mark.django_db
def test_selective_filter_still_returns_k_results_through_the_hnsw_index(big_and_small, member):
    """The member may read 5% of 2,000 chunks and the HNSW walk starts with 40 candidates
    (~2 of them readable): the iterative scan keeps going until k rows pass the filter."""
    big, small, query = big_and_small
    planner_as_at_scale()
    with override_settings(RETRIEVAL_EXACT_MAX_CHUNKS=0, RETRIEVAL_EF_SEARCH=40):
        def search():
            return chunks_search(user=member, query="", query_vector=query, k=10, mode="vector", max_distance=None)

        results = search()
        assert vector_half_ran(search) == "hnsw"
    assert len(results) == 10 and {r.collection_id for r in results} == {small.id}
    assert len({r.chunk_id for r in results} & set(exact_nearest(small, query))) >= 8


@pytest.mark.django_db
def test_a_small_readable_set_is_searched_exactly(big_and_small, member, outsider):
    """At most RETRIEVAL_EXACT_MAX_CHUNKS readable chunks: exact distances instead of the
    HNSW walk, chosen inside the same one statement, with the permission filter in it."""
    big, small, query = big_and_small
    planner_as_at_scale()

    def search(user=member, **kwargs):
        return chunks_search(user=user, query=kwargs.pop("query", ""), query_vector=query, k=10, max_distance=None,
                             **kwargs)

    with override_settings(RETRIEVAL_EXACT_MAX_CHUNKS=99):  # the member reads 100 chunks: HNSW
        assert vector_half_ran(lambda: search(mode="vector")) == "hnsw"
    with override_settings(RETRIEVAL_EXACT_MAX_CHUNKS=100):  # at most 100: exact
        assert vector_half_ran(lambda: search(mode="vector")) == "exact"
        exact = search(mode="vector")
        hybrid = search(query="chunk")
        assert search(user=outsider, query="chunk") == []
        assert search(query="chunk", collection_ids=[big.id]) == []
        assert search(user=outsider, query="chunk", mode="vector", collection_ids=[small.id]) == []
    assert [r.chunk_id for r in exact] == exact_nearest(small, query)
    assert [r.vector_rank for r in exact] == list(range(1, 11))
    assert len(hybrid) == 10 and {r.collection_id for r in hybrid} == {small.id}


@pytest.mark.django_db
def test_picking_documents_makes_a_large_collection_small_enough_for_exact_search(big_and_small, corpus_admin):
    """The owner reads all 2,000 chunks (HNSW) but picks one document of 100 (exact)."""
    big, small, query = big_and_small
    planner_as_at_scale()
    document = Document.objects.get(collection=small)
    with override_settings(RETRIEVAL_EXACT_MAX_CHUNKS=1000):
        def search(**kwargs):
            return chunks_search(user=corpus_admin, query="", query_vector=query, k=10, mode="vector",
                                 max_distance=None, **kwargs)

        assert vector_half_ran(search) == "hnsw"
        assert vector_half_ran(lambda: search(document_ids=[document.id])) == "exact"
        results = search(document_ids=[document.id])
    assert [r.chunk_id for r in results] == exact_nearest(small, query)
