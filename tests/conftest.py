"""Shared fixtures: the three roles, a collection with an owner, a member and an outsider."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests.factories import CollectionFactory, UserFactory


@pytest.fixture
def staff_group(db) -> Group:
    return Group.objects.get(name="staff")


@pytest.fixture
def corpus_admin(db):
    return UserFactory(username="admin", groups=["corpus_admin"])


@pytest.fixture
def member(db):
    return UserFactory(username="member", groups=["staff"])


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider", groups=["staff"])


@pytest.fixture
def compliance_officer(db):
    return UserFactory(username="compliance", groups=["compliance_officer"])


@pytest.fixture
def collection(db, corpus_admin, member):
    """A collection created by the corpus admin, readable by ``member`` only."""
    collection = CollectionFactory(name="Finance policies", created_by=corpus_admin)
    collection.reader_users.add(member)
    return collection


@pytest.fixture
def worker(tmp_path):
    """A real Celery worker process on the test database and broker; yields its log path."""
    import os

    from django.db import connection

    from tests.servers import database_url, start_worker, stop_process_group

    log = tmp_path / "worker.log"
    process = start_worker(database=database_url(connection.settings_dict), broker=os.environ["CELERY_BROKER_URL"], log_path=log)
    yield log
    stop_process_group(process)
