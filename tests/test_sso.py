"""Single sign-on through OpenID Connect, against a real provider on 127.0.0.1.

The browser's part of the flow (the sign-in page, the redirect to the provider and back) is
driven with Django's test client plus one plain HTTP request to the provider; the server's
part (code exchange, JWKS, userinfo) goes over HTTP from the platform to the provider
(tests/oidc_provider.py), with nothing of mozilla-django-oidc replaced.
"""

from __future__ import annotations

import importlib
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, clear_url_caches, reverse

from apps.accounts.middleware import SIGNED_IN_AT
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.services import audit_verify_chain
from tests.factories import PASSWORD, UserFactory
from tests.oidc_provider import OidcTestProvider

OIDC_VARIABLES = ("OIDC_RP_CLIENT_ID", "OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT",
                  "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT", "OIDC_OP_ISSUER",
                  "OIDC_RP_SIGN_ALGO", "OIDC_GROUPS_CLAIM", "OIDC_ROLE_MAP", "OIDC_RP_CLIENT_SECRET_FILE")
ROLE_MAP = "Clinicians=staff,Records-Office=corpus_admin,Internal-Audit=compliance_officer"
HOUSE = {"sub": "idp-0001", "preferred_username": "g.house", "email": "g.house@hospital.example",
         "given_name": "Gregory", "family_name": "House", "groups": ["Clinicians", "Records-Office", "Parking"]}


def _reload_urls() -> None:
    import rag_platform.urls

    importlib.reload(rag_platform.urls)
    clear_url_caches()


@pytest.fixture(scope="module")
def provider():
    provider = OidcTestProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def sso(provider, settings, monkeypatch):
    """Single sign-on configured from the environment, as an operator would, with this provider."""
    from rag_platform.settings import oidc_settings_from_environment

    provider.reset()
    for name, value in provider.environment(OIDC_GROUPS_CLAIM="groups", OIDC_ROLE_MAP=ROLE_MAP).items():
        monkeypatch.setenv(name, value)
    for name, value in oidc_settings_from_environment().items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, settings.SSO_BACKEND]
    _reload_urls()
    yield provider
    settings.OIDC_ENABLED = False
    _reload_urls()


def browser_visit(url: str) -> requests.Response:
    """The browser's visit to the provider (not the platform's: that goes through the backend)."""
    with requests.Session() as browser:
        browser.trust_env = False
        return browser.get(url, allow_redirects=False, timeout=10)


def sso_sign_in(client, provider, next_url: str = ""):
    """Click "Sign in with single sign-on", sign in at the provider, come back. Returns the
    callback's response."""
    start = client.get(reverse("oidc_authentication_init"), {"next": next_url} if next_url else {})
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.issuer}/authorize?")
    asked = parse_qs(urlsplit(start["Location"]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
    at_provider = browser_visit(start["Location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == reverse("oidc_authentication_callback")
    return client.get(f"{back.path}?{back.query}")


def signed_in_as(client) -> str:
    response = client.get(reverse("corpus:collection_list"))
    return response.context["user"].get_username() if response.status_code == 200 else ""


def failures() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=EventType.SIGN_IN_FAILED).order_by("sequence"))


@pytest.mark.django_db
def test_sso_signs_in_a_new_user_with_the_mapped_roles_and_audits_it(client, sso):
    page = client.get(reverse("login"), {"next": "/history/"}).content.decode()
    assert "Sign in with single sign-on" in page and f'href="{reverse("oidc_authentication_init")}?next=' in page

    sso.identity = dict(HOUSE)
    response = sso_sign_in(client, sso, next_url="/history/")
    assert response.status_code == 302 and response["Location"] == "/history/"
    assert signed_in_as(client) == "g.house"
    # The platform itself talked to the provider: code exchange, signing key, userinfo.
    assert {("POST", "/token"), ("GET", "/jwks"), ("GET", "/userinfo")} <= set(sso.log)

    user = get_user_model().objects.get(username="g.house")
    assert (user.email, user.first_name, user.last_name) == ("g.house@hospital.example", "Gregory", "House")
    assert not user.has_usable_password()
    assert sorted(user.groups.values_list("name", flat=True)) == ["corpus_admin", "staff"]  # "Parking": unmapped

    event = AuditEvent.objects.get(event_type=EventType.SIGNED_IN)
    assert event.outcome == Outcome.SUCCESS and event.actor_username == "g.house"
    assert event.actor_roles == ["corpus_admin", "staff"]
    assert event.payload == {"method": "oidc", "issuer": sso.issuer, "subject": "idp-0001", "account_created": True,
                             "roles_from_provider": ["corpus_admin", "staff"]}
    role_change = AuditEvent.objects.get(event_type=EventType.ROLE_CHANGED)
    assert role_change.payload["added"] == ["corpus_admin", "staff"] and role_change.payload["username"] == "g.house"
    assert "client_secret" not in str(list(AuditEvent.objects.values_list("payload", flat=True)))
    assert audit_verify_chain().ok


@pytest.mark.django_db
def test_the_provider_decides_roles_and_details_at_every_sign_in(client, sso):
    from apps.accounts.services import sso_identity_link

    existing = UserFactory(username="g.house", groups=["compliance_officer"])
    sso_identity_link(user=existing, issuer=sso.issuer, subject=HOUSE["sub"])  # an administrator bound it
    sso.identity = {**HOUSE, "email": "house@new.example", "groups": ["Clinicians"]}
    assert sso_sign_in(client, sso).status_code == 302
    existing.refresh_from_db()
    assert existing.email == "house@new.example"
    assert list(existing.groups.values_list("name", flat=True)) == ["staff"]
    assert existing.has_usable_password()  # a local password account keeps its password
    event = AuditEvent.objects.get(event_type=EventType.SIGNED_IN)
    assert event.payload["account_created"] is False
    removed = AuditEvent.objects.get(event_type=EventType.ROLE_CHANGED).payload
    assert removed["removed"] == ["compliance_officer"] and removed["added"] == ["staff"]


@pytest.mark.parametrize("tamper, reason", [
    ("bad_signature", "JWS token verification failed"),
    ("wrong_nonce", "Nonce verification failed"),
    ("other_audience", "not issued for this client"),
])
@pytest.mark.django_db
def test_a_forged_id_token_signs_nobody_in_and_is_audited(client, sso, tamper, reason):
    sso.identity, sso.tamper = dict(HOUSE), tamper
    response = sso_sign_in(client, sso)
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    assert not get_user_model().objects.filter(username="g.house").exists()
    [failed] = failures()
    assert failed.outcome == Outcome.DENIED and failed.payload["method"] == "oidc"
    assert reason in failed.payload["reason"]
    assert not AuditEvent.objects.filter(event_type=EventType.SIGNED_IN).exists()
    assert "Single sign-on did not sign you in" in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_a_replayed_or_forged_callback_is_refused(client, sso):
    sso.identity = dict(HOUSE)
    start = client.get(reverse("oidc_authentication_init"))
    back = urlsplit(browser_visit(start["Location"]).headers["Location"])
    callback = f"{back.path}?{back.query}"
    assert client.get(callback).status_code == 302 and signed_in_as(client) == "g.house"

    client.post(reverse("logout"))
    assert client.get(callback)["Location"] == reverse("login")  # the same state again
    forged = reverse("oidc_authentication_callback") + "?code=made-up&state=made-up"
    assert client.get(forged)["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    # Both refused; the same failure from the same address twice in one window is one event now
    # and a count (apps.accounts.failures), not two events.
    from apps.accounts.models import AuthFailureWindow

    assert [e.payload["reason"] for e in failures()] == [
        "unknown or already used state (a forged or replayed response)"]
    assert AuthFailureWindow.objects.get(method="oidc").count == 2
    assert sso.log.count(("POST", "/token")) == 1  # neither reached the provider


@pytest.mark.django_db
def test_a_disabled_account_cannot_sign_in_and_an_sso_session_ends_when_disabled(client, sso):
    from apps.accounts.services import sso_identity_link

    sso_identity_link(user=UserFactory(username="g.house"), issuer=sso.issuer, subject=HOUSE["sub"])
    get_user_model().objects.filter(username="g.house").update(is_active=False)
    sso.identity = dict(HOUSE)
    assert sso_sign_in(client, sso)["Location"] == reverse("login")
    assert signed_in_as(client) == ""
    [failed] = failures()
    assert failed.payload == {"method": "oidc", "username": "g.house", "reason": "disabled account"}

    sso.identity = {**HOUSE, "sub": "idp-0002", "preferred_username": "j.wilson", "email": "j.wilson@hospital.example"}
    assert sso_sign_in(client, sso).status_code == 302 and signed_in_as(client) == "j.wilson"
    get_user_model().objects.filter(username="j.wilson").update(is_active=False)
    assert signed_in_as(client) == ""  # the next request is no longer signed in


@pytest.mark.django_db
def test_sso_sessions_have_the_same_idle_and_absolute_limits(client, sso, settings):
    sso.identity = dict(HOUSE)
    assert sso_sign_in(client, sso).status_code == 302
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE  # idle: moves with each request
    session = client.session
    assert session[SIGNED_IN_AT] >= int(time.time()) - 60
    session[SIGNED_IN_AT] = int(time.time()) - settings.SESSION_ABSOLUTE_SECONDS - 5
    session.save()
    assert client.get(reverse("corpus:collection_list"))["Location"].startswith(reverse("login"))
    assert signed_in_as(client) == ""


@pytest.mark.django_db
def test_the_provider_is_reached_without_the_environments_proxy(client, sso, monkeypatch):
    """Proxy variables pointing at a loopback listener: a requests session that honoured them
    would send the code exchange there; the platform's goes straight to the provider."""
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(4)
    trap.settimeout(0.2)
    proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        # The control: an ordinary requests session would take the proxy for the token endpoint.
        assert requests.Session().merge_environment_settings(
            f"{sso.issuer}/token", {}, None, None, None)["proxies"].get("http") == proxy
        sso.identity = dict(HOUSE)
        assert sso_sign_in(client, sso).status_code == 302 and signed_in_as(client) == "g.house"
        try:
            trap.accept()[0].close()
            reached_proxy = True
        except (TimeoutError, OSError):
            reached_proxy = False
        assert not reached_proxy
    finally:
        trap.close()


@pytest.mark.django_db
def test_without_configuration_there_is_no_sso_route_button_or_backend(client, settings, monkeypatch):
    from rag_platform.settings import oidc_settings_from_environment

    for name in OIDC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert oidc_settings_from_environment() == {"OIDC_ENABLED": False}
    assert settings.OIDC_ENABLED is False and settings.SSO_BACKEND not in settings.AUTHENTICATION_BACKENDS
    with pytest.raises(NoReverseMatch):
        reverse("oidc_authentication_init")
    assert "single sign-on" not in client.get(reverse("login")).content.decode().lower()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    # Password sign-in is as before, and its event says so.
    UserFactory(username="nurse")
    assert client.post(reverse("login"), {"username": "nurse", "password": PASSWORD}).status_code == 302
    assert AuditEvent.objects.get(event_type=EventType.SIGNED_IN).payload == {"method": "password"}


def test_configuration_from_the_environment_is_checked(monkeypatch, tmp_path):
    from rag_platform.settings import oidc_settings_from_environment, parse_role_map

    for name in OIDC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OIDC_RP_CLIENT_ID", "private-rag")
    with pytest.raises(ImproperlyConfigured, match="OIDC_RP_CLIENT_SECRET, OIDC_OP_AUTHORIZATION_ENDPOINT"):
        oidc_settings_from_environment()
    secret = tmp_path / "client_secret"
    secret.write_text("from-a-file\n")
    for name, value in {"OIDC_RP_CLIENT_SECRET_FILE": str(secret),
                        "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://sso.hospital.example/authorize",
                        "OIDC_OP_TOKEN_ENDPOINT": "http://10.0.0.5/token", "OIDC_OP_USER_ENDPOINT": "http://10.0.0.5/me",
                        "OIDC_OP_JWKS_ENDPOINT": "http://10.0.0.5/jwks"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match="OIDC_OP_ISSUER"):
        oidc_settings_from_environment()  # accounts are bound to (iss, sub): the issuer is required
    monkeypatch.setenv("OIDC_OP_ISSUER", "https://sso.hospital.example")
    values = oidc_settings_from_environment()
    assert values["OIDC_ENABLED"] and values["OIDC_RP_CLIENT_SECRET"] == "from-a-file"
    assert values["OIDC_RP_SIGN_ALGO"] == "RS256" and values["OIDC_USE_PKCE"] and values["OIDC_ROLE_MAP"] == {}

    assert parse_role_map(ROLE_MAP, "groups")["Internal-Audit"] == ["compliance_officer"]
    assert parse_role_map('{"CN=Clinicians,OU=Groups,DC=hospital": ["staff", "corpus_admin"]}', "memberOf") == {
        "CN=Clinicians,OU=Groups,DC=hospital": ["staff", "corpus_admin"]}
    with pytest.raises(ImproperlyConfigured, match="roles are staff, corpus_admin, compliance_officer"):
        parse_role_map("Doctors=superuser", "groups")
    with pytest.raises(ImproperlyConfigured, match="OIDC_GROUPS_CLAIM"):
        parse_role_map("Doctors=staff", "")


def test_a_public_provider_endpoint_fails_the_system_check_unless_allowed(monkeypatch):
    """Classified from the address alone: nothing is sent (IP literals, no name lookup)."""
    from apps.audit.checks import check_endpoints_are_local
    from rag_platform.process import egress_policy

    monkeypatch.setenv("OIDC_OP_TOKEN_ENDPOINT", "https://8.8.8.8/token")
    monkeypatch.setenv("OIDC_OP_USER_ENDPOINT", "http://10.20.30.40/userinfo")
    monkeypatch.setenv("OIDC_OP_JWKS_ENDPOINT", "http://127.0.0.1:9/jwks")
    assert [error.id for error in check_endpoints_are_local() if error.is_serious()] == ["rag.E004"]
    policy = egress_policy.Policy.from_environment()
    assert policy.connect_allowed("10.20.30.40", 80)[0]  # a private provider is a configured endpoint
    assert not policy.connect_allowed("8.8.8.8", 443)[0]
    monkeypatch.setenv("RAG_EGRESS_ALLOW", "8.8.8.8:443")
    assert not [error for error in check_endpoints_are_local() if error.is_serious()]
