"""Plays the web process and the ingestion for tests/test_search_replica.py, in a fresh
interpreter whose DATABASE_URL is the primary and DATABASE_REPLICA_URL the hot standby.

    python tests/replica_probe.py STANDBY_SUPERUSER_URL

Ingests a document on the primary, waits for the standby to replay it, pauses the standby's
replay, ingests a second document, and searches through the API (Bearer tokens) as a reader
and as an outsider; resumes replay and searches again. Prints one JSON line.
"""

import io
import json
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

import rag_platform.wsgi  # noqa: E402,F401  (the web process's start: guard, Django)

import psycopg  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from apps.api.services import api_token_create  # noqa: E402
from apps.audit.models import AuditEvent, EventType  # noqa: E402
from apps.ingestion.archives import files_upload  # noqa: E402
from apps.ingestion.services import document_ingest  # noqa: E402
from apps.retrieval.routers import search_database  # noqa: E402
from tests.factories import CollectionFactory, UserFactory  # noqa: E402


def _ingest(collection, user, name: str, text: str) -> int:
    data = text.encode()
    (result,) = files_upload(collection=collection, uploaded_by=user, name=name, content=io.BytesIO(data), size=len(data))
    document_ingest(document_id=result.document.id)
    return result.document.id


def _caught_up(standby) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        target = cursor.fetchone()[0]
    deadline = time.monotonic() + 120  # replay is quick; a loaded machine is not
    while time.monotonic() < deadline:
        if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]:
            return
        time.sleep(0.05)
    raise SystemExit("the standby did not catch up in 120 s")


def _search(token: str, q: str) -> list[int]:
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/search", {"q": q})
    assert response.status_code == 200, response.content
    return sorted({hit["document_id"] for hit in response.json()})


def main() -> None:
    setup_test_environment()
    standby = psycopg.connect(sys.argv[1], autocommit=True)
    admin = UserFactory(username="admin", groups=["corpus_admin"])
    reader = UserFactory(username="reader", groups=["staff"])
    outsider = UserFactory(username="outsider", groups=["staff"])
    collection = CollectionFactory(name="Facilities", created_by=admin)
    collection.reader_users.add(reader)
    reader_token = api_token_create(user=reader, name="probe", days=1).secret
    outsider_token = api_token_create(user=outsider, name="probe", days=1).secret

    first = _ingest(collection, admin, "canteen.md", "# Canteen\n\nThe canteen opens at noon and closes at three.\n")
    _caught_up(standby)
    standby.execute("SELECT pg_wal_replay_pause()")
    second = _ingest(collection, admin, "canteen-hours.md", "# Canteen on Fridays\n\nOn Fridays the canteen opens at eleven.\n")
    events_before = AuditEvent.objects.using("default").filter(event_type=EventType.QUESTION_ASKED).count()
    paused = {"reader": _search(reader_token, "When does the canteen open?"),
              "outsider": _search(outsider_token, "When does the canteen open?")}
    events_after = AuditEvent.objects.using("default").filter(event_type=EventType.QUESTION_ASKED).count()
    replica_events = standby_count(standby)
    standby.execute("SELECT pg_wal_replay_resume()")
    _caught_up(standby)
    resumed = _search(reader_token, "When does the canteen open?")
    print(json.dumps({
        "search_database": search_database(), "first": first, "second": second, "paused": paused, "resumed": resumed,
        "audit_events_added_on_primary": events_after - events_before, "question_events_on_paused_replica": replica_events,
        "in_recovery": standby.execute("SELECT pg_is_in_recovery()").fetchone()[0],
    }))


def standby_count(standby) -> int:
    return standby.execute("SELECT count(*) FROM audit_auditevent WHERE event_type = %s",
                           [EventType.QUESTION_ASKED.value]).fetchone()[0]


if __name__ == "__main__":
    main()
