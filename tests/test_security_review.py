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


@pytest.mark.django_db(transaction=True)
def test_a_large_anonymous_post_is_refused_before_its_body_is_read(live_server, settings, tmp_path):
    """A csrftoken cookie of the right form and a 64 MiB multipart POST to /login/: answered
    413 at once, nothing spooled (before: the CSRF check parsed the body, spooling it to disk)."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    boundary = "x" * 20
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + b"A" * (8 * 1024 * 1024)
    headers = {"Cookie": "csrftoken=" + "a" * 32, "Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(64 * 1024 * 1024)}
    status, _ = _raw_request(live_server, "POST", "/login/", headers)
    assert status == 413
    assert _spooled(tmp_path) == 0


@pytest.mark.django_db(transaction=True)
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

    from apps.corpus.services import collection_create
    from apps.corpus.models import Document

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    admin = UserFactory(username="uploader", groups=["corpus_admin"])
    collection = collection_create(name="Uploads", created_by=admin)
    client.force_login(admin)
    big = SimpleUploadedFile("big.txt", b"B" * (3 * 1024 * 1024), content_type="text/plain")
    response = client.post(f"/collections/{collection.id}/upload/", {"files": [big]}, follow=True)
    assert "over the upload limit" in response.content.decode()
    assert not Document.objects.exists() and _spooled(tmp_path) == 0
