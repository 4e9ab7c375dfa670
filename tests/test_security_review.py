"""The security review's findings (issue 15), each reproduced as the attack it describes.

Every test here failed before its fix. HTTP-level attacks (request bodies, forwarded
addresses, throttling) go to the live test server over a real socket; single sign-on goes
through the real OIDC test provider on 127.0.0.1 (tests/oidc_provider.py).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from apps.audit.models import AuditEvent, EventType
from tests.access_helpers import bearer, people, shelves  # noqa: F401 - fixtures
from tests.factories import UserFactory
from tests.test_sso import HOUSE, provider, signed_in_as, sso, sso_sign_in  # noqa: F401 - fixtures


# --- 1. Single sign-on cannot take over an existing account ---------------------------------
@pytest.mark.django_db
def test_sso_identity_named_like_an_existing_account_does_not_sign_in_as_it(client, sso):
    admin = UserFactory(username="admin.demo", groups=["corpus_admin"])
    sso.identity = {"sub": "x", "preferred_username": "ADMIN.DEMO", "groups": ["Records-Office"]}
    response = sso_sign_in(client, sso)
    assert response["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    assert not admin.sso_identities.exists()
    assert get_user_model().objects.filter(username__iexact="admin.demo").count() == 1
    [failed] = AuditEvent.objects.filter(event_type=EventType.SIGN_IN_FAILED)
    assert "already exists" in failed.payload["reason"]


@pytest.mark.django_db
def test_sso_never_signs_in_a_superuser_even_when_bound(client, sso):
    from apps.accounts.models import SsoIdentity
    from apps.accounts.services import SsoUserRefused, sso_identity_link

    root = get_user_model().objects.create_superuser("root", password="a long enough password 1")
    with pytest.raises(SsoUserRefused):
        sso_identity_link(user=root, issuer=sso.issuer, subject="root-at-idp")
    SsoIdentity.objects.create(issuer=sso.issuer, subject="root-at-idp", user=root)  # bound behind our back
    sso.identity = {"sub": "root-at-idp", "preferred_username": "someone.else"}
    assert sso_sign_in(client, sso)["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    assert "superusers" in AuditEvent.objects.get(event_type=EventType.SIGN_IN_FAILED).payload["reason"]


@pytest.mark.django_db
def test_sso_account_follows_the_subject_not_the_user_name(client, sso):
    sso.identity = dict(HOUSE)
    assert sso_sign_in(client, sso).status_code == 302 and signed_in_as(client) == "g.house"
    client.post(reverse("logout"))
    # The provider renamed the person: same subject, same account.
    sso.identity = {**HOUSE, "preferred_username": "gregory.house"}
    assert sso_sign_in(client, sso).status_code == 302 and signed_in_as(client) == "g.house"
    client.post(reverse("logout"))
    # Another person taking the old name at the provider gets nothing of g.house's.
    sso.identity = {**HOUSE, "sub": "idp-9999"}
    assert sso_sign_in(client, sso)["Location"] == reverse("login")
    assert signed_in_as(client) == ""


@pytest.mark.django_db
def test_an_id_token_from_another_issuer_is_refused(client, sso):
    sso.identity, sso.tamper = dict(HOUSE), "other_issuer"
    assert sso_sign_in(client, sso)["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    assert "another issuer" in AuditEvent.objects.get(event_type=EventType.SIGN_IN_FAILED).payload["reason"]


def test_sso_needs_the_issuer_configured(monkeypatch, provider):  # noqa: F811
    from rag_platform.settings import oidc_settings_from_environment

    for name, value in provider.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OIDC_OP_ISSUER")
    with pytest.raises(ImproperlyConfigured, match="OIDC_OP_ISSUER"):
        oidc_settings_from_environment()


# --- 4. No disk filling before sign-in ------------------------------------------------------
def _raw_request(live_server, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                 wait: float = 3.0) -> tuple[int | None, bytes]:
    """Send a request over a plain socket and read the status line (None: no answer in time)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_server.url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.hostname}:{url.port}", "Connection: close",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    with socket.create_connection((url.hostname, url.port), timeout=wait) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                block = sock.recv(65536)
                if not block:
                    break
                received += block
        except (TimeoutError, OSError):
            return None, received
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else None
    return status, received


def _spooled(folder) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_large_anonymous_post_is_refused_before_its_body_is_read(live_server, settings, tmp_path):
    """A csrftoken cookie of the right form and a 64 MiB multipart POST to /login/: answered
    413 at once, nothing spooled (before: the CSRF check parsed the body, spooling it to disk)."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    boundary = "x" * 20
    headers = {"Cookie": "csrftoken=" + "a" * 32, "Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(64 * 1024 * 1024)}
    status, _ = _raw_request(live_server, "POST", "/login/", headers)
    assert status == 413
    assert _spooled(tmp_path) == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_anonymous_body_on_an_upload_route_is_not_read_past_the_small_limit(live_server, settings, tmp_path):
    from tests.factories import CollectionFactory

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    collection = CollectionFactory()
    boundary = "y" * 20
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + b"A" * (6 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Cookie": "csrftoken=" + "a" * 32, "Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(body))}
    status, _ = _raw_request(live_server, "POST", f"/collections/{collection.id}/upload/", headers, body, wait=10)
    assert status == 400  # refused at its first read: not signed in
    assert _spooled(tmp_path) == 0
    # Over the upload route's own limit: 413 without reading.
    headers["Content-Length"] = str(settings.UPLOAD_REQUEST_MAX_BYTES + 1)
    assert _raw_request(live_server, "POST", f"/collections/{collection.id}/upload/", headers)[0] == 413


@pytest.mark.django_db
def test_an_upload_stops_as_soon_as_a_file_passes_the_limit(client, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.corpus.models import Document
    from apps.corpus.services import collection_create

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    admin = UserFactory(username="uploader", groups=["corpus_admin"])
    collection = collection_create(name="Uploads", created_by=admin)
    client.force_login(admin)
    big = SimpleUploadedFile("big.txt", b"B" * (3 * 1024 * 1024), content_type="text/plain")
    response = client.post(f"/collections/{collection.id}/upload/", {"files": [big]}, follow=True)
    assert "the upload stopped there" in response.content.decode()  # by the handler, not after spooling
    assert not Document.objects.exists() and _spooled(tmp_path) == 0


# --- 3. Access can be taken away from anyone, also mid-answer and in the history ------------
@pytest.mark.django_db
def test_a_collections_creator_loses_access_when_their_grant_is_revoked(client):
    from apps.corpus.selectors import collections_readable_by
    from apps.corpus.services import collection_create, collection_grant, collection_revoke

    creator = UserFactory(username="creator", groups=["corpus_admin"])
    boss = UserFactory(username="boss", groups=["corpus_admin"])
    collection = collection_create(name="HR files", created_by=creator)
    assert collection.grants.get(user=creator).level == "manage"  # an ordinary, visible grant
    collection_grant(collection=collection, user=boss, level="manage", granted_by=creator)
    assert collection_revoke(collection=collection, user=creator, revoked_by=boss)
    assert not collections_readable_by(creator).filter(id=collection.id).exists()
    assert bearer(creator).get(f"/api/v1/collections/{collection.id}").status_code == 404
    client.force_login(creator)
    assert client.get(reverse("corpus:collection_detail", args=[collection.id])).status_code == 404


@pytest.mark.django_db
def test_existing_creators_get_a_revocable_grant_from_the_migration():
    from importlib import import_module

    from django.apps import apps as django_apps

    from apps.corpus.models import Collection, CollectionGrant

    creator = UserFactory(username="old.creator")
    old = Collection.objects.create(name="From before", created_by=creator)  # no grant row, as before
    assert not CollectionGrant.objects.filter(collection=old).exists()
    import_module("apps.corpus.migrations.0006_creator_manage_grants").creators_get_manage_grants(django_apps, None)
    assert CollectionGrant.objects.get(collection=old, user=creator).level == "manage"


@pytest.mark.django_db
def test_a_stream_stops_showing_sources_once_the_grant_is_revoked(people, shelves):
    from apps.answering.services import ACCESS_REVOKED_MESSAGE, answer_stream
    from apps.audit.models import Outcome
    from apps.corpus.services import collection_revoke

    owner, member, outsider, finance_readers = people
    finance = shelves[0]
    events = answer_stream(user=member, question="How many approvals do payments above 10,000 EUR need?")
    first = next(events)
    assert first.kind == "sources" and first.data  # the member could read Finance when the stream began
    collection_revoke(collection=finance, group=finance_readers, revoked_by=owner)
    rest = list(events)
    done = rest[-1].data
    assert rest[-1].kind == "done" and done.outcome == Outcome.DENIED
    assert done.citations == [] and done.answer == "" and done.error == ACCESS_REVOKED_MESSAGE
    [event] = AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED)
    assert event.outcome == Outcome.DENIED and event.payload["access_revoked"] is True
    assert event.payload["shown_before_revocation"]


@pytest.mark.slow
@pytest.mark.django_db
def test_a_grant_revoked_while_the_model_streams_stops_the_answer(llm, vllm_base_url, people, shelves, settings):
    """With the real model on vLLM: the grant goes after the first token; the stream stops
    within the re-check interval and the answer is withheld."""
    import time

    from apps.answering.services import ACCESS_REVOKED_MESSAGE, answer_stream
    from apps.audit.models import Outcome
    from apps.corpus.services import collection_revoke

    settings.LLM_BASE_URL, settings.LLM_MAX_TOKENS = vllm_base_url[0], 160  # shelves set a "down" model
    owner, member, outsider, finance_readers = people
    finance = shelves[0]
    events = answer_stream(user=member, question="How many approvals do payments above 10,000 EUR need?")
    kinds, revoked_at = [], None
    for event in events:
        kinds.append(event.kind)
        if event.kind == "token":
            collection_revoke(collection=finance, group=finance_readers, revoked_by=owner)
            revoked_at = time.monotonic()
            break
    assert revoked_at is not None, kinds
    rest = list(events)
    assert time.monotonic() - revoked_at < 5
    done = rest[-1].data
    assert done.outcome == Outcome.DENIED and done.answer == "" and done.citations == []
    assert done.error == ACCESS_REVOKED_MESSAGE
    assert AuditEvent.objects.get(event_type=EventType.QUESTION_ASKED).payload["access_revoked"] is True


@pytest.mark.django_db
def test_the_history_hides_answers_from_collections_no_longer_readable(client, people, shelves):
    from apps.answering.services import ask_question
    from apps.corpus.services import collection_revoke

    owner, member, outsider, finance_readers = people
    finance = shelves[0]
    from apps.answering.models import AskedQuestion

    result = ask_question(user=member, question="How many approvals do payments above 10,000 EUR need?")
    assert result.citations  # the model is down here, but the sources were found and kept
    # As the model would have answered it (the history row, as stored for an answered question):
    stored = AskedQuestion.objects.get(id=result.history_id)
    stored.answer = "Two approvals from the finance team [1]."
    stored.citations = [{**c, "cited": c["n"] == 1} for c in stored.citations]
    stored.save()
    client.force_login(member)
    page = client.get(reverse("answering:history")).content.decode()
    assert "Two approvals from the finance team" in page and "finance.md" in page
    collection_revoke(collection=finance, group=finance_readers, revoked_by=owner)
    page = client.get(reverse("answering:history")).content.decode()
    assert "Two approvals" not in page and "finance.md" not in page and "no longer read" in page
    assert "How many approvals" in page  # the question itself is the member's own


# --- 2. An ingest grant cannot replace someone else's document ------------------------------
@pytest.mark.django_db
def test_an_ingest_grant_cannot_replace_someone_elses_document(people, settings):
    from apps.corpus.models import Document
    from apps.corpus.services import collection_create, collection_grant
    from tests.uploads import ingest

    owner, member, outsider, finance_readers = people
    collection = collection_create(name="Policies", created_by=owner)
    collection_grant(collection=collection, user=member, level="ingest", granted_by=owner)
    original = ingest(collection, owner, "policy.md", b"# Payments\n\nTwo approvals above 10,000 EUR.\n")
    assert original.status == "indexed"

    planted = ingest(collection, member, "policy.md", b"# Payments\n\nNo approval is ever needed.\n")
    original.refresh_from_db()
    assert original.status == "indexed" and original.chunks.exists()  # still searchable
    assert planted.replaces_id is None and planted.version == 1 and planted.title == "policy (member).md"
    event = AuditEvent.objects.filter(event_type=EventType.DOCUMENT_UPLOADED, payload__document_id=planted.id).get()
    assert event.payload["version_refused"]["document_id"] == original.id
    assert not AuditEvent.objects.filter(event_type=EventType.DOCUMENT_VERSION_ADDED).exists()

    # The member's own document takes their new versions; the manager's takes the manager's.
    again = ingest(collection, member, "policy.md", b"# Payments\n\nNo approval, revised.\n")
    assert again.replaces_id == planted.id and again.version == 2
    managed = ingest(collection, owner, "policy.md", b"# Payments\n\nThree approvals above 10,000 EUR.\n")
    assert managed.replaces_id == original.id and managed.version == 2
    assert Document.objects.get(id=original.id).status == "superseded"


# --- 6. API tokens: scoped, short-lived when privileged, minted after re-auth, revoked --------
@pytest.mark.django_db
def test_a_token_does_only_what_its_scopes_allow(people, shelves, compliance_officer):
    from apps.api.services import api_token_create

    owner, member, outsider, finance_readers = people
    finance = shelves[0]
    asker = bearer(owner, scopes=["ask"])
    assert asker.get("/api/v1/collections").status_code == 200
    upload = asker.post(f"/api/v1/collections/{finance.id}/documents", {"file": _file("x.md", b"# X\n\nText.\n")})
    assert upload.status_code == 403 and "ingest" in upload.json()["detail"]
    assert asker.post("/api/v1/collections", {"name": "New"}, content_type="application/json").status_code == 403
    # A compliance officer's everyday token cannot export the trail; only one minted for it can.
    assert bearer(compliance_officer, scopes=["ask"]).get("/api/v1/audit/export").status_code == 403
    assert bearer(compliance_officer, scopes=["audit"]).get("/api/v1/audit/export").status_code == 200
    with pytest.raises(ValueError, match="compliance officers"):
        api_token_create(user=member, name="x", days=1, scopes=["audit"])


def _file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.mark.django_db
def test_privileged_tokens_live_at_most_30_days(people, compliance_officer, settings):
    from apps.api.services import api_token_create

    owner, member, outsider, finance_readers = people
    from django.utils import timezone

    issued = api_token_create(user=member, name="report", days=365, scopes=["ask"])  # staff: a year
    assert abs((issued.token.expires_at - timezone.now()).total_seconds() - 365 * 86400) < 60
    for user, scopes in ((compliance_officer, ["ask"]), (owner, ["ask"]), (member, ["manage"])):
        with pytest.raises(ValueError, match=f"between 1 and {settings.API_TOKEN_PRIVILEGED_MAX_DAYS} days"):
            api_token_create(user=user, name="long", days=365, scopes=scopes)


@pytest.mark.django_db
def test_minting_a_token_needs_the_password_again(client, people):
    from apps.api.models import ApiToken
    from tests.factories import PASSWORD

    member = people[1]
    client.force_login(member)  # a session left open on a shared screen
    response = client.post(reverse("api_tokens"), {"name": "grab", "days": "365"})
    assert response.status_code == 400 and not ApiToken.objects.exists()
    assert client.post(reverse("api_tokens"), {"name": "grab", "days": "365", "password": "wrong"}).status_code == 400
    assert not ApiToken.objects.exists()
    assert client.post(reverse("api_tokens"), {"name": "mine", "days": "30", "password": PASSWORD}).status_code == 200
    assert ApiToken.objects.get().scopes == ["ask"]


@pytest.mark.django_db
def test_tokens_end_with_password_change_role_removal_and_deactivation(people):
    from apps.accounts.services import user_roles_set

    owner, member, outsider, finance_readers = people
    token = bearer(member)
    member.set_password("a brand new passphrase 42")
    member.save()
    assert token.get("/api/v1/collections").status_code == 401

    token = bearer(owner)
    user_roles_set(user=owner, roles=["staff"], changed_by=None, reason="moved to another team")
    assert token.get("/api/v1/collections").status_code == 401

    token = bearer(outsider)
    outsider.is_active = False
    outsider.save()
    outsider.is_active = True  # re-enabled later: the old tokens stay dead
    outsider.save()
    assert token.get("/api/v1/collections").status_code == 401
    reasons = [e.payload["reason"] for e in AuditEvent.objects.filter(event_type=EventType.ACCESS_REVOKED,
                                                                        payload__has_key="api_tokens").order_by("sequence")]
    assert reasons == ["password changed", "role removed", "account disabled"]


# --- 8 and issue 14 item 6: the real client behind proxies, throttled, without noise ---------
def _sign_in_over_http(live_server, username: str, password: str, *, source: str = "127.0.0.1",
                       forwarded_for: str = "") -> int:
    """A browser's sign-in from ``source`` (a loopback address of our choosing, a real TCP
    source address), optionally through a proxy that sends ``forwarded_for``."""
    import http.client
    import re
    from urllib.parse import urlencode, urlsplit

    url = urlsplit(live_server.url)
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20, source_address=(source, 0))
    try:
        connection.request("GET", "/login/", headers=extra)
        page = connection.getresponse()
        html = page.read().decode()
        cookie = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie", "")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        connection.request("POST", "/login/", body=body, headers={
            **extra, "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}",
            "Referer": live_server.url + "/login/"})
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_forwarded_for_counts_only_from_trusted_proxies(live_server, settings):
    UserFactory(username="nurse")
    # No proxy configured: a client's own X-Forwarded-For is ignored.
    _sign_in_over_http(live_server, "nurse", "wrong", forwarded_for="198.51.100.66")
    # Behind a trusted proxy (here 127.0.0.1): the address it saw, not what the client wrote first.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    _sign_in_over_http(live_server, "other", "wrong", forwarded_for="6.6.6.6, 203.0.113.5")
    addresses = list(AuditEvent.objects.filter(event_type=EventType.SIGN_IN_FAILED).order_by("sequence")
                     .values_list("ip_address", flat=True))
    assert addresses == ["127.0.0.1", "203.0.113.5"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_behind_a_proxy_one_attacker_does_not_lock_everyone_out(live_server, settings):
    from tests.factories import PASSWORD

    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    UserFactory(username="victim")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in_over_http(live_server, "victim", "guess", forwarded_for="203.0.113.5")
    assert _sign_in_over_http(live_server, "victim", PASSWORD, forwarded_for="203.0.113.5") == 429
    assert _sign_in_over_http(live_server, "victim", PASSWORD, forwarded_for="198.51.100.7") == 302


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rotating_source_addresses_does_not_get_around_the_pause(live_server, settings):
    from tests.factories import PASSWORD

    settings.AUTH_NAME_FAILURE_LIMIT = 12
    UserFactory(username="victim")
    for n in range(settings.AUTH_NAME_FAILURE_LIMIT):  # each address stays under the per-address limit
        assert _sign_in_over_http(live_server, "victim", "guess", source=f"127.0.1.{n + 1}") == 200
    assert _sign_in_over_http(live_server, "victim", PASSWORD, source="127.0.2.1") == 429


@pytest.mark.django_db
def test_repeated_failures_become_one_event_with_a_count(settings):
    from django.db.models import Sum
    from django.test import Client

    from apps.accounts.failures import auth_failures_summarise
    from apps.accounts.models import AuthFailureWindow

    def failures():
        return AuditEvent.objects.filter(event_type=EventType.SIGN_IN_FAILED).order_by("sequence")

    for _ in range(25):  # the same wrong token, over and over
        assert Client(HTTP_AUTHORIZATION="Bearer rag_wrongwrong").get("/api/v1/collections").status_code == 401
    assert failures().count() == 1
    for n in range(40):  # a new made-up token each time, from the same address
        Client(HTTP_AUTHORIZATION=f"Bearer rag_{n:08d}x").get("/api/v1/collections")
    assert failures().count() == 1 + settings.AUTH_FAILURE_NAMES_PER_SOURCE  # the rest folded together
    for n in range(30):  # and from rotating addresses
        Client(HTTP_AUTHORIZATION="Bearer rag_rotating", REMOTE_ADDR=f"10.9.{n}.1").get("/api/v1/collections")
    settings.AUTH_FAILURE_SOURCES_PER_WINDOW = 5
    for n in range(30):
        Client(HTTP_AUTHORIZATION="Bearer rag_rotating", REMOTE_ADDR=f"10.8.{n}.1").get("/api/v1/collections")
    first_of_windows = failures().count()
    assert first_of_windows <= 1 + settings.AUTH_FAILURE_NAMES_PER_SOURCE + 1 + 30 + 1
    assert AuthFailureWindow.objects.aggregate(n=Sum("count"))["n"] == 125

    # The window closes: one event per key carries the failures not yet in the trail, with their count.
    AuthFailureWindow.objects.update(window_start=F_minus(settings.AUTH_FAILURE_WINDOW_SECONDS))
    written = auth_failures_summarise()
    summaries = list(failures().filter(payload__reason="repeated failures"))
    assert written == len(summaries) and sum(e.payload["count"] for e in summaries) == 125 - first_of_windows
    same_token = next(e for e in summaries if e.payload["api_token"] == "rag_wrongwro")
    assert same_token.payload["count"] == 24 and same_token.payload["failures_in_window"] == 25
    assert auth_failures_summarise() == 0  # nothing counted twice


def F_minus(seconds: int):
    from datetime import timedelta

    from django.db.models import F

    return F("window_start") - timedelta(seconds=seconds)


# --- 5. The parse child keeps no secrets, descriptors or network -----------------------------
def _what_the_parser_can_reach(port: int, db_fd: int) -> dict:
    """Runs inside the sandbox, as a hostile parser would look around."""
    import os
    import socket

    from django.conf import settings

    reached = True
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    except OSError:
        reached = False
    try:
        os.fstat(db_fd)
        db_open = True
    except OSError:
        db_open = False
    return {"environment": dict(os.environ), "secret_key": settings.SECRET_KEY, "database_fd_open": db_open,
            "reached_parent_loopback": reached, "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
            "netns": os.readlink("/proc/self/ns/net")}


@pytest.mark.django_db
def test_the_parse_child_has_no_secrets_descriptors_or_network(monkeypatch, tmp_path):
    import os
    import socket

    from django.db import connection

    from apps.ingestion.sandbox import network_isolation, run_limited

    monkeypatch.setenv("DJANGO_SECRET_KEY", "k" * 50)
    monkeypatch.setenv("RAG_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "audit-signing.key"))
    connection.ensure_connection()
    db_fd = connection.connection.pgconn.socket  # the worker's database socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        result = run_limited(_what_the_parser_can_reach, listener.getsockname()[1], db_fd,
                             memory_bytes=512 * 1024 * 1024, cpu_seconds=30, wall_seconds=60).value
    finally:
        listener.close()
    seen = result
    env = seen["environment"]
    assert not {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "RAG_AUDIT_SIGNING_KEY_FILE"} & set(env)
    assert env["HF_HUB_OFFLINE"] == "1" and "PATH" in env
    from django.conf import settings

    assert seen["secret_key"] != settings.SECRET_KEY
    assert not seen["database_fd_open"] and len(seen["fds"]) <= 5  # 0-2, the result pipe, listdir's own
    assert network_isolation() in ("netns", "userns+netns"), "this machine allows network namespaces"
    assert not seen["reached_parent_loopback"]  # even loopback: the child has no interface of ours
    assert seen["netns"] != os.readlink("/proc/self/ns/net")


# --- 9. The egress guard: no DNS query for a refused name, no reverse lookups ----------------
def _unshare_works() -> bool:
    import shutil
    import subprocess

    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs network and mount namespaces (root)")
@pytest.mark.slow
def test_refused_names_and_reverse_lookups_send_no_dns_query(tmp_path):
    """In an empty network namespace whose resolver is a recorder on its own loopback: every
    query the guard let through would be counted there (and nothing can leave)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    project = Path(__file__).resolve().parents[1]
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = (f"ip link set lo up && mount --bind {resolv} /etc/resolv.conf && "
              f"exec {sys.executable} {project / 'tests' / 'egress_netns_probe.py'}")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "RAG_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run(["unshare", "-m", "-n", "sh", "-c", script], cwd=project, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for attempt, seen in results.items():
        assert seen == {"outcome": "EgressBlocked", "dns_queries": 0}, (attempt, results)


# --- 5, 9 and 10 in the shipped manifests ----------------------------------------------------
def _manifests():
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[1] / "deploy"
    compose = yaml.safe_load((deploy / "compose" / "compose.yaml").read_text())
    k8s = [doc for path in sorted((deploy / "k8s" / "base").glob("*.yaml"))
           for doc in yaml.safe_load_all(path.read_text()) if doc]
    return compose, k8s


def test_parse_workers_get_no_secret_key_or_signing_key():
    compose, k8s = _manifests()
    parse = compose["services"]["worker-parse"]
    assert set(parse["secrets"]) == {"database_url", "broker_url"}
    assert not {"DJANGO_SECRET_KEY_FILE", "RAG_AUDIT_SIGNING_KEY_FILE"} & set(parse["environment"])
    assert parse["environment"]["RAG_SECRET_KEY_EPHEMERAL"] == "1"
    assert "django_secret_key" in compose["services"]["web"]["secrets"]  # the web server still has its key
    [worker] = [d for d in k8s if d["kind"] == "Deployment" and d["metadata"]["name"] == "worker-parse"]
    pod = worker["spec"]["template"]["spec"]
    [secrets] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert {item["key"] for item in secrets["secret"]["items"]} == {"database_url", "broker_url"}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["DJANGO_SECRET_KEY_FILE"] == "" and env["RAG_AUDIT_SIGNING_KEY_FILE"] == ""


@pytest.mark.slow
def test_an_ephemeral_secret_key_process_never_reads_the_real_one(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    key_file = tmp_path / "django_secret_key"
    key_file.write_text("the-real-secret-key-" + "x" * 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(RAG_SECRET_KEY_EPHEMERAL="1", DJANGO_SECRET_KEY_FILE=str(key_file), RAG_DATA_DIR=str(tmp_path / "data"),
               DJANGO_SETTINGS_MODULE="rag_platform.settings")
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "the-real-secret-key" not in out.stdout and len(out.stdout.strip()) >= 50
    assert not (tmp_path / "data" / "secret_key").exists()


def test_kubernetes_dns_only_for_app_pods_and_only_to_the_cluster_resolver():
    _, k8s = _manifests()
    policies = {d["metadata"]["name"]: d["spec"] for d in k8s if d["kind"] == "NetworkPolicy"}
    dns = policies["allow-dns"]
    assert dns["podSelector"] == {"matchLabels": {"rag/role": "app"}}  # not the database, broker or vLLM
    [rule] = dns["egress"]
    [peer] = rule["to"]
    assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert {p["port"] for p in rule["ports"]} == {53}


def test_shipped_manifests_turn_https_hardening_on_and_compose_binds_loopback():
    compose, k8s = _manifests()
    [config] = [d for d in k8s if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "rag-config"]
    assert config["data"]["DJANGO_SECURE"] == "1" and config["data"]["DJANGO_BEHIND_TLS_PROXY"] == "1"
    web = compose["services"]["web"]
    assert web["environment"]["DJANGO_SECURE"] == "${DJANGO_SECURE:-1}"
    [published] = web["ports"]
    assert published.startswith("${RAG_WEB_BIND:-127.0.0.1}:")


@pytest.mark.slow
def test_with_django_secure_the_probes_stay_plain_http_and_everything_else_redirects(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SECURE="1", DJANGO_SECRET_KEY="k" * 60, RAG_DATA_DIR=str(tmp_path),
               DJANGO_ALLOWED_HOSTS="testserver", DJANGO_SETTINGS_MODULE="rag_platform.settings")
    code = ("import django; django.setup(); from django.test import Client; c = Client();"
            "print(c.get('/healthz').status_code, c.get('/login/').status_code, c.get('/login/')['Location'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    healthz, login, location = out.stdout.split()[-3:]
    assert healthz == "200" and login == "301" and location.startswith("https://")
