"""PostgreSQL away (restarting, its disk full) while people ask: a clear message, never a 500
or a dropped stream, no answer shown that the trail does not hold, and each question's one
audit event written once the database is back (bench-chaos found 500s and dropped streams).

The database goes away for real: the connection is closed and pointed at a socket directory
where no server listens, so every query fails in psycopg as during a restart.
"""

import json
from contextlib import contextmanager

import pytest
from django.db import connections
from django.test import Client

from apps.answering import services
from apps.answering.recording import UNRECORDED_MESSAGE
from apps.audit import held
from apps.audit.models import AuditEvent, EventType, Outcome
from apps.audit.selectors import event_content
from tests.access_helpers import bearer
from tests.uploads import ingest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FINANCE = b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team.\n"
QUESTION = "How many approvals does a payment above 10,000 EUR need?"


@contextmanager
def database_away(where):
    connection = connections["default"]
    connection.close()
    saved = connection.settings_dict["HOST"]
    connection.settings_dict["HOST"] = str(where)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"] = saved


def away_when_called(module, name, monkeypatch, where):
    """The database goes away as ``module.name`` is called (then it runs); the caller ends it."""
    away, real = database_away(where), getattr(module, name)

    def going(*args, **kwargs):
        away.__enter__()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, going)
    return away


def events_of(agent):
    held.flush()  # the database is back: what was held is written (the retry thread may have done it)
    return list(AuditEvent.objects.filter(event_type=EventType.QUESTION_ASKED, user_agent=agent))


def test_a_question_whose_database_goes_away_ends_clearly_and_its_event_comes_later(
        collection, corpus_admin, member, monkeypatch, tmp_path):
    ingest(collection, corpus_admin, "payments.md", FINANCE)
    away = away_when_called(services, "retrieve", monkeypatch, tmp_path)
    client = Client(HTTP_USER_AGENT="db-away/stream")
    client.force_login(member)
    try:
        response = client.post("/ask/stream/", {"question": QUESTION})
        body = b"".join(response.streaming_content).decode()
    finally:
        away.__exit__(None, None, None)
    assert response.status_code == 200
    kind, data = body.strip().split("\n\n")[-1].split("\n")
    done = json.loads(data.removeprefix("data: "))
    assert kind == "event: done" and done["outcome"] == Outcome.ERROR
    assert done["error"] == UNRECORDED_MESSAGE and done["answer"] == "" and done["sources"] == []
    [event] = events_of("db-away/stream")
    content = event_content(event)
    assert event.outcome == Outcome.ERROR and event.actor_id == member.id
    assert content["question"] == QUESTION and content["error"] == UNRECORDED_MESSAGE
    assert content["recorded_late"]["why"].startswith("OperationalError")
    assert held.held_count() == 0


def test_a_question_asked_while_the_database_is_away_gets_a_503_that_says_so(member, tmp_path):
    api = bearer(member, scopes=["ask"])
    api.raise_request_exception = False
    web = Client(HTTP_USER_AGENT="db-away/web", raise_request_exception=False)
    web.force_login(member)
    with database_away(tmp_path):
        answer = api.post("/api/v1/ask", {"question": QUESTION}, content_type="application/json",
                          HTTP_USER_AGENT="db-away/api")
        page = web.post("/ask/stream/", {"question": QUESTION})
    assert answer.status_code == 503 and answer["Retry-After"] == "30"
    assert answer.json() == {"detail": UNRECORDED_MESSAGE}
    assert page.status_code == 503 and "Temporarily unavailable" in page.content.decode()
    assert "could not be answered or recorded" in page.content.decode()
    for agent in ("db-away/api", "db-away/web"):
        [event] = events_of(agent)
        assert event.outcome == Outcome.ERROR and event_content(event)["question"] == QUESTION


def test_another_error_keeps_the_500_page(member, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("apps.corpus.selectors.collections_readable_by", broken)
    monkeypatch.setattr("apps.answering.views.collections_readable_by", broken)
    web = Client(raise_request_exception=False)
    web.force_login(member)
    assert web.post("/ask/stream/", {"question": QUESTION}).status_code == 500
    assert held.held_count() == 0


def test_an_api_answer_whose_session_cannot_be_saved_is_a_503_not_a_400(collection, corpus_admin, member, monkeypatch,
                                                                          tmp_path):
    """A client with both a session and a token (bench-chaos's API users): the database went
    away during the answer, so the session cannot be saved either; Django calls that a 400."""
    ingest(collection, corpus_admin, "payments.md", FINANCE)
    away = away_when_called(services, "retrieve", monkeypatch, tmp_path)
    api = bearer(member, scopes=["ask"])
    api.raise_request_exception = False
    api.force_login(member)
    try:
        answer = api.post("/api/v1/ask", {"question": QUESTION}, content_type="application/json",
                          HTTP_USER_AGENT="db-away/session")
    finally:
        away.__exit__(None, None, None)
    assert answer.status_code == 503 and answer.json() == {"detail": UNRECORDED_MESSAGE}
    [event] = events_of("db-away/session")
    assert event.outcome == Outcome.ERROR


def test_a_streamed_question_whose_session_cannot_be_saved_gets_a_503_and_its_event(member, monkeypatch, tmp_path):
    """The database goes away after the stream view returned but before its session is saved:
    Django drops the response (so the stream never starts) and calls it a 400."""
    from apps.answering import views

    away = away_when_called(views, "answer_stream", monkeypatch, tmp_path)
    web = Client(HTTP_USER_AGENT="db-away/stream-session", raise_request_exception=False)
    web.force_login(member)
    try:
        page = web.post("/ask/stream/", {"question": QUESTION})
    finally:
        away.__exit__(None, None, None)
    assert page.status_code == 503 and "could not be answered or recorded" in page.content.decode()
    [event] = events_of("db-away/stream-session")
    assert event.outcome == Outcome.ERROR and event_content(event)["question"] == QUESTION
