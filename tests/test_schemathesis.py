"""Schemathesis against the API's own OpenAPI schema, in process (WSGI): no server errors,
every response matches the schema, and every request naming another user's collection or
document is refused."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.access_helpers import bearer, closed_loopback_port, people  # noqa: F401  (fixtures)
from tests.factories import CollectionFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def keep_test_connection():
    """In-process WSGI calls must not close the test's database connection (Django's test
    client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def owner_token(people, settings):
    settings.LLM_BASE_URL = f"http://127.0.0.1:{closed_loopback_port()}/v1"
    settings.LLM_RETRIES = 0
    owner = people[0]
    CollectionFactory(name="Fuzzed", created_by=owner)
    return bearer(owner).token.secret


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, owner_token):
    response = case.call(headers={"Authorization": f"Bearer {owner_token}"})
    case.validate_response(response, checks=CHECKS)


@pytest.mark.django_db
def test_every_cross_collection_request_is_refused(people):
    """Each operation with a collection or document id, called by the outsider with the ids
    of the owner's collection and document: 403/404, never data."""
    from apps.corpus.models import Document

    owner, member, outsider, _ = people
    collection = CollectionFactory(name="Private", created_by=owner)
    document = Document.objects.create(collection=collection, title="secret.txt", file="x", sha256="s", size_bytes=1)
    token = bearer(outsider).token.secret
    tried = 0
    for operation in schema.get_all_operations():
        op = operation.ok()
        params = {p.name for p in op.path_parameters}
        if not params & {"collection_id", "document_id"}:
            continue
        path_parameters = {"collection_id": collection.id, "document_id": document.id}
        method, path = op.method.upper(), op.path
        extra: dict = {}
        if method == "DELETE" and path.endswith("/grants"):
            extra["query"] = {"username": "outsider"}
        elif method == "POST" and path.endswith("/grants"):
            extra["body"], extra["media_type"] = {"level": "read", "username": "outsider"}, "application/json"
        elif method == "POST" and path.endswith("/documents"):
            extra["body"], extra["media_type"] = {"file": b"Some text."}, "multipart/form-data"
        case = op.Case(path_parameters={k: v for k, v in path_parameters.items() if k in params}, **extra)
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (403, 404), (op.method, op.path, response.status_code)
        tried += 1
    assert tried >= 7
    assert Document.objects.filter(id=document.id).exists()
