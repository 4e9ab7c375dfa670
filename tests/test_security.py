"""Sign-in hardening, session limits, security headers and the production deploy check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.middleware import SIGNED_IN_AT
from tests.factories import PASSWORD, UserFactory

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2():
    user = UserFactory(username="hashed")
    assert get_user_model().objects.get(id=user.id).password.startswith("argon2")


def _sign_in(client, username, password, ip="10.1.1.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_repeated_failures_pause_that_name_from_that_address_only(client, settings):
    UserFactory(username="victim")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "victim", "wrong", ip="203.0.113.9").status_code == 200
    assert _sign_in(client, "victim", "wrong", ip="203.0.113.9").status_code == 429  # the limit-th failure
    locked = _sign_in(client, "victim", PASSWORD, ip="203.0.113.9")
    assert locked.status_code == 429 and "Sign-in paused" in locked.content.decode()
    # The attacker's address cannot lock the victim out: from the victim's address it works.
    assert _sign_in(client, "victim", PASSWORD, ip="198.51.100.7").status_code == 302


@pytest.mark.django_db
def test_the_pause_ends_by_itself(client, settings):
    from axes.models import AccessAttempt

    UserFactory(username="victim")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "victim", "wrong")
    assert _sign_in(client, "victim", PASSWORD).status_code == 429
    cooloff = settings.AXES_COOLOFF_TIME
    assert timedelta(0) < cooloff <= timedelta(hours=1)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - cooloff - timedelta(seconds=1))
    assert _sign_in(client, "victim", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_idle_and_absolute_session_timeouts(client, settings):
    assert settings.SESSION_SAVE_EVERY_REQUEST and settings.SESSION_COOKIE_AGE <= 3600
    UserFactory(username="worker")
    assert _sign_in(client, "worker", PASSWORD).status_code == 302
    assert client.get(reverse("corpus:collection_list")).status_code == 200
    session = client.session
    session[SIGNED_IN_AT] = int(time.time()) - settings.SESSION_ABSOLUTE_SECONDS - 5
    session.save()
    response = client.get(reverse("corpus:collection_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client.get(reverse("corpus:collection_list")).status_code == 302  # signed out for good


@pytest.mark.django_db
def test_disabling_an_account_ends_its_sessions(client):
    user = UserFactory(username="leaver")
    assert _sign_in(client, "leaver", PASSWORD).status_code == 302
    assert client.get(reverse("corpus:collection_list")).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(reverse("corpus:collection_list")).status_code == 302


@pytest.mark.django_db
def test_security_headers_allow_no_outside_origin(client):
    user = UserFactory(username="reader")
    client.force_login(user)
    for url in (reverse("answering:ask"), reverse("login"), "/api/v1/docs"):
        response = client.get(url)
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "http" not in csp and "*" not in csp
        assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_templates_use_no_inline_script_or_style():
    """The CSP forbids them; a template that needs one would break silently in the browser."""
    import re

    offenders = []
    for template in (PROJECT / "templates").rglob("*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text) or " style=" in text or "<style" in text:
            offenders.append(str(template.relative_to(PROJECT)))
    assert offenders == []


@pytest.mark.slow
def test_deploy_check_is_clean_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SECURE": "1",
        "DJANGO_SECRET_KEY": "k" + os.urandom(32).hex() + "Z9!",
        "DJANGO_ALLOWED_HOSTS": "rag.example.org",
        "RAG_DATA_DIR": str(tmp_path),
    })
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
