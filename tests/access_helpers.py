"""Shared set-up for the access and API tests: three users and two collections.

owner    creates "Finance" (manages it) and "Legal"; member reads Finance through a group;
outsider has the staff role and no grant at all."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from apps.api.services import api_token_create
from apps.corpus.services import collection_grant
from tests.factories import CollectionFactory, UserFactory
from tests.uploads import ingest

FINANCE = (b"# Payments\n\nPayments above 10,000 EUR require two approvals from the finance team.\n\n"
           b"# Travel\n\nTrain travel is reimbursed in second class; flights need a manager's approval.\n")
LEGAL = (b"# Contracts\n\nEvery supplier contract above 50,000 EUR is reviewed by the legal department.\n\n"
         b"# Secrets\n\nThe merger code name is BLUEHERON and must never leave the legal team.\n")


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(user, scopes=None) -> Client:
    """A test client that authenticates with a fresh API token of ``user``; by default with
    every scope the user may hold (ask, ingest, manage, and audit for compliance officers)."""
    if scopes is None:
        scopes = ["ask", "ingest", "manage"] + (["audit"] if user.has_perm("audit.view_auditevent") else [])
    issued = api_token_create(user=user, name="tests", days=1, scopes=scopes)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.token = issued
    return client


@pytest.fixture
def people(db):
    finance_readers = Group.objects.create(name="finance-readers")
    owner = UserFactory(username="owner", groups=["corpus_admin"])
    member = UserFactory(username="member", groups=["staff"])
    member.groups.add(finance_readers)
    outsider = UserFactory(username="outsider", groups=["staff"])
    return owner, member, outsider, finance_readers


@pytest.fixture
def shelves(people, settings):
    """Finance (member reads it through the group) and Legal (owner only), both indexed."""
    owner, member, outsider, finance_readers = people
    settings.LLM_BASE_URL = f"http://127.0.0.1:{closed_loopback_port()}/v1"  # the model is "down"
    settings.LLM_RETRIES = 0
    finance = CollectionFactory(name="Finance", created_by=owner)
    legal = CollectionFactory(name="Legal", created_by=owner)
    collection_grant(collection=finance, group=finance_readers, level="read", granted_by=owner)
    finance_doc = ingest(finance, owner, "finance.md", FINANCE)
    legal_doc = ingest(legal, owner, "legal.md", LEGAL)
    assert finance_doc.status == "indexed" and legal_doc.status == "indexed", (finance_doc.failure_reason, legal_doc.failure_reason)
    return finance, legal, finance_doc, legal_doc
