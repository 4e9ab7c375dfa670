"""Grants and the one visibility rule: owner, member and outsider against every endpoint.

Owner created both collections (manages them); member reads Finance through a group grant;
outsider has the staff role and no grant. Every endpoint is tried by all three."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.answering.services import ask_question
from apps.audit.models import AuditEvent, EventType
from apps.corpus.models import Chunk, CollectionGrant
from apps.corpus.selectors import (
    chunk_visible_to,
    collections_ingestable_by,
    collections_manageable_by,
    collections_readable_by,
)
from apps.corpus.services import collection_grant, collection_revoke
from apps.retrieval.services import chunks_search
from tests.access_helpers import bearer, people, shelves  # noqa: F401  (fixtures)
from tests.factories import CollectionFactory


def ids(queryset) -> set[int]:
    return set(queryset.values_list("id", flat=True))


# --- The selectors ---------------------------------------------------------------------
@pytest.mark.django_db
def test_levels_are_cumulative_and_groups_are_inherited(people):
    owner, member, outsider, finance_readers = people
    books = CollectionFactory(name="Books", created_by=owner)
    assert ids(collections_manageable_by(owner)) == {books.id}  # the creator manages
    assert not ids(collections_readable_by(member)) and not ids(collections_readable_by(outsider))

    collection_grant(collection=books, group=finance_readers, level="read", granted_by=owner)
    assert ids(collections_readable_by(member)) == {books.id}
    assert not ids(collections_ingestable_by(member))
    collection_grant(collection=books, user=member, level="ingest", granted_by=owner)
    assert ids(collections_ingestable_by(member)) == {books.id} and not ids(collections_manageable_by(member))
    collection_grant(collection=books, user=member, level="manage", granted_by=owner)
    assert ids(collections_manageable_by(member)) == {books.id}
    # A user who joins the group later reads at once; one who leaves stops at once.
    outsider.groups.add(finance_readers)
    assert ids(collections_readable_by(outsider)) == {books.id}
    outsider.groups.remove(finance_readers)
    assert not ids(collections_readable_by(outsider))


@pytest.mark.django_db
def test_the_visibility_rule_is_one_sql_statement(people):
    owner, member, *_ = people
    CollectionFactory(name="Books", created_by=owner)
    with CaptureQueriesContext(connection) as queries:
        list(collections_readable_by(member))
    assert len(queries.captured_queries) == 1
    assert "corpus_collectiongrant" in queries.captured_queries[0]["sql"]


@pytest.mark.django_db
def test_disabled_or_anonymous_users_read_nothing(people):
    from django.contrib.auth.models import AnonymousUser

    owner, *_ = people
    CollectionFactory(name="Books", created_by=owner)
    owner.is_active = False
    owner.save()
    assert not ids(collections_readable_by(owner)) and not ids(collections_readable_by(AnonymousUser()))


@pytest.mark.django_db
def test_grant_and_revoke_are_audited_in_the_same_transaction(people):
    owner, member, outsider, finance_readers = people
    books = CollectionFactory(name="Books", created_by=owner)
    before = AuditEvent.objects.count()
    collection_grant(collection=books, user=member, level="ingest", granted_by=owner)
    collection_grant(collection=books, user=member, level="ingest", granted_by=owner)  # no change, no event
    collection_grant(collection=books, group=finance_readers, level="read", granted_by=owner)
    assert collection_revoke(collection=books, user=member, revoked_by=owner)
    assert not collection_revoke(collection=books, user=member, revoked_by=owner)
    events = list(AuditEvent.objects.order_by("sequence")[before:])
    assert [e.event_type for e in events] == [EventType.ACCESS_GRANTED, EventType.ACCESS_GRANTED, EventType.ACCESS_REVOKED]
    assert events[0].payload | {} == events[0].payload and events[0].payload["username"] == "member"
    assert events[0].payload["level"] == "ingest" and events[0].actor_username == "owner"
    assert events[1].payload["group"] == "finance-readers"
    # A failure after the grant rolls both back (same transaction).
    from django.db import transaction

    count = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        collection_grant(collection=books, user=outsider, level="read", granted_by=owner)
        raise RuntimeError("boom")
    assert AuditEvent.objects.count() == count and not CollectionGrant.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_only_managers_change_grants(people):
    owner, member, outsider, finance_readers = people
    books = CollectionFactory(name="Books", created_by=owner)
    collection_grant(collection=books, user=member, level="ingest", granted_by=owner)
    for who in (member, outsider):
        with pytest.raises(PermissionDenied):
            collection_grant(collection=books, user=outsider, level="manage", granted_by=who)
        with pytest.raises(PermissionDenied):
            collection_revoke(collection=books, user=member, revoked_by=who)


@pytest.mark.django_db
def test_the_old_read_grants_became_read_grants(people):
    """reader_users / reader_groups still work (through CollectionGrant, level read)."""
    owner, member, outsider, finance_readers = people
    books = CollectionFactory(name="Books", created_by=owner)
    books.reader_users.add(outsider)
    books.reader_groups.add(Group.objects.get(name="staff"))
    assert CollectionGrant.objects.filter(collection=books, level="read").count() == 2
    assert ids(collections_readable_by(member)) == {books.id}  # staff group


# --- Every web endpoint, three users ----------------------------------------------------
WEB_READ = [
    ("corpus:collection_detail", "finance", 200, 200, 404),
    ("corpus:collection_detail", "legal", 200, 404, 404),
    ("corpus:passage_detail", "finance_chunk", 200, 200, 404),
    ("corpus:passage_detail", "legal_chunk", 200, 404, 404),
]


def _target(name, shelves):
    finance, legal, finance_doc, legal_doc = shelves
    return {
        "finance": finance.id, "legal": legal.id,
        "finance_chunk": finance_doc.chunks.first().id, "legal_chunk": legal_doc.chunks.first().id,
    }[name]


@pytest.mark.django_db
@pytest.mark.parametrize("url_name,target,owner_status,member_status,outsider_status", WEB_READ)
def test_web_reads_three_users(client, people, shelves, url_name, target, owner_status, member_status, outsider_status):
    url = reverse(url_name, args=[_target(target, shelves)])
    for user, expected in zip(people[:3], (owner_status, member_status, outsider_status)):
        client.force_login(user)
        assert client.get(url).status_code == expected, (user.username, url)


@pytest.mark.django_db
def test_collection_list_and_ask_page_show_only_readable_collections(client, people, shelves):
    owner, member, outsider, _ = people
    for user, visible, hidden in ((owner, ["Finance", "Legal"], []), (member, ["Finance"], ["Legal"]),
                                  (outsider, [], ["Finance", "Legal"])):
        client.force_login(user)
        for url in (reverse("corpus:collection_list"), reverse("answering:ask")):
            page = client.get(url).content.decode()
            assert all(name in page for name in visible), (user.username, url)
            assert not any(f">{name}<" in page or f"{name}</" in page for name in hidden), (user.username, url)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["upload", "delete", "retry", "grant_add", "grant_remove"])
def test_web_writes_refused_to_member_and_outsider(client, people, shelves, action):
    from django.core.files.uploadedfile import SimpleUploadedFile

    owner, member, outsider, finance_readers = people
    finance, legal, finance_doc, legal_doc = shelves
    requests = {
        "upload": (reverse("ingestion:document_upload", args=[finance.id]),
                   {"files": [SimpleUploadedFile("x.txt", b"new text")]}),
        "delete": (reverse("ingestion:document_delete", args=[finance.id, finance_doc.id]), {}),
        "retry": (reverse("ingestion:document_retry", args=[finance.id, finance_doc.id]), {}),
        "grant_add": (reverse("corpus:grant_add", args=[finance.id]), {"username": "outsider", "level": "read"}),
        "grant_remove": (reverse("corpus:grant_remove", args=[finance.id]), {"group_id": finance_readers.id}),
    }
    url, data = requests[action]
    for user in (member, outsider):
        client.force_login(user)
        assert client.post(url, data).status_code in (403, 404), (user.username, action)
    assert finance_doc.__class__.objects.filter(id=finance_doc.id).exists()
    assert CollectionGrant.objects.filter(collection=finance, group=finance_readers).exists()
    assert not CollectionGrant.objects.filter(user=outsider).exists()
    client.force_login(owner)
    assert client.post(url, data).status_code == 302, action


@pytest.mark.django_db
def test_grants_ui_for_managers_only(client, people, shelves):
    owner, member, outsider, _ = people
    finance = shelves[0]
    url = reverse("corpus:collection_detail", args=[finance.id])
    client.force_login(member)
    assert "Grant access" not in client.get(url).content.decode()
    client.force_login(owner)
    page = client.get(url).content.decode()
    assert "Who has access" in page and "finance-readers" in page
    response = client.post(reverse("corpus:grant_add", args=[finance.id]), {"username": "nobody", "level": "read"})
    assert response.status_code == 400 and "No user named" in response.content.decode()
    response = client.post(reverse("corpus:grant_add", args=[finance.id]), {"username": "", "level": "read"})
    assert response.status_code == 400 and "Choose a group or type one user name" in response.content.decode()
    response = client.post(reverse("corpus:grant_add", args=[finance.id]), {"username": "outsider", "level": "ingest"}, follow=True)
    assert "User outsider now has read and upload access." in response.content.decode()
    assert AuditEvent.objects.filter(event_type=EventType.ACCESS_GRANTED, payload__username="outsider").exists()


@pytest.mark.django_db
def test_revoking_takes_effect_on_the_next_request(client, people, shelves):
    owner, member, outsider, finance_readers = people
    finance, legal, finance_doc, _ = shelves
    chunk = finance_doc.chunks.first()
    api = bearer(member)
    client.force_login(member)
    assert client.get(reverse("corpus:passage_detail", args=[chunk.id])).status_code == 200
    assert api.get(f"/api/v1/documents/{finance_doc.id}").status_code == 200
    assert chunks_search(user=member, query="approvals for payments")

    collection_revoke(collection=finance, group=finance_readers, revoked_by=owner)

    assert client.get(reverse("corpus:passage_detail", args=[chunk.id])).status_code == 404
    assert client.get(reverse("corpus:collection_detail", args=[finance.id])).status_code == 404
    assert api.get(f"/api/v1/documents/{finance_doc.id}").status_code == 404
    assert api.get("/api/v1/collections").json() == []
    assert chunks_search(user=member, query="approvals for payments") == []
    assert chunk_visible_to(member, chunk.id) is None


# --- Many random questions as the outsider ---------------------------------------------
WORDS = ("payments approvals finance EUR travel train flights manager contracts supplier legal merger "
         "code name BLUEHERON secret department reviewed reimbursed class team never leave").split()


@pytest.mark.django_db
def test_outsider_gets_no_foreign_chunk_from_many_random_questions(people, shelves, settings):
    """Search service, ask service (model down: the retrieved passages are still recorded)
    and the API's search and ask: no chunk of Finance or Legal ever reaches the outsider,
    and the member never gets one of Legal."""
    owner, member, outsider, _ = people
    finance, legal, *_ = shelves
    foreign_for = {outsider: set(Chunk.objects.values_list("id", flat=True)),
                   member: set(Chunk.objects.filter(collection=legal).values_list("id", flat=True))}
    assert foreign_for[outsider] and foreign_for[member]
    rng = random.Random(5)
    clients = {user: bearer(user) for user in foreign_for}
    seen_any_for_member = False
    for number in range(40):
        question = " ".join(rng.sample(WORDS, rng.randint(1, 6)))
        user = outsider if number % 4 else member
        foreign = foreign_for[user]
        picked = rng.choice([None, [finance.id], [legal.id], [finance.id, legal.id]])
        got = {r.chunk_id for r in chunks_search(user=user, query=question, collection_ids=picked, max_distance=None)}
        result = ask_question(user=user, question=question, collection_ids=picked)
        got |= {c.source.chunk_id for c in result.citations}
        event = AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED).order_by("-sequence").first()
        got |= {r["chunk_id"] for r in event.payload.get("retrieved", [])}
        api = clients[user]
        response = api.get("/api/v1/search", {"q": question})
        assert response.status_code == 200
        got |= {hit["chunk_id"] for hit in response.json()}
        response = api.post("/api/v1/ask", {"question": question}, content_type="application/json")
        assert response.status_code == 200
        got |= {c["chunk_id"] for c in response.json()["citations"]}
        if picked:  # naming a collection one may not read is refused, not searched
            response = api.get("/api/v1/search", {"q": question, "collection_id": picked})
            readable = user is member and picked == [finance.id]
            assert response.status_code == (200 if readable else 404)
            if readable:
                got |= {hit["chunk_id"] for hit in response.json()}
        assert not got & foreign, (user.username, question, got & foreign)
        seen_any_for_member |= user is member and bool(got)
    assert seen_any_for_member  # the member's searches do find Finance: the test can see chunks
