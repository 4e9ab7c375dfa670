"""Connections as another database role than the test's own (the application role).

``as_role("postgres", ...)`` is the cluster superuser of the embedded PostgreSQL: what an
operator with full database access could do. Committed at once, so only for tests marked
``django_db(transaction=True, serialized_rollback=True)`` (serialized like every other
transactional test of the suite, so the flush after it leaves groups and permissions as
the next test expects).
"""

from __future__ import annotations

import psycopg
from django.db import connection

SUPERUSER = "postgres"
OWNER = "rag_owner"


def conninfo(role: str) -> dict:
    s = connection.settings_dict
    return {"host": s.get("HOST") or None, "port": s.get("PORT") or None, "dbname": s["NAME"], "user": role}


def as_role(role: str, *statements: str) -> None:
    with psycopg.connect(**conninfo(role), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def as_superuser(*statements: str) -> None:
    """Triggers off (``session_replication_role = replica``), as only a superuser may."""
    with psycopg.connect(**conninfo(SUPERUSER)) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
