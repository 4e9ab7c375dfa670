"""Searches read from a streaming replica when one is configured.

``DATABASE_REPLICA_URL`` (settings: rag_platform.conf.services) adds the ``replica`` alias: a
PostgreSQL hot standby of ``default`` (streaming replication). Only ``chunks_search`` asks
for it, with the hint ``search=True``; every other read and every write (audit events,
uploads, grants, answers) stays on ``default``, the primary, and nothing is migrated on the
replica (it is read-only; it replays the primary's WAL). Without the setting there is one
server, as in the embedded stack.
"""

from __future__ import annotations

from django.conf import settings

REPLICA = "replica"


def search_database() -> str:
    """The alias searches read from: the replica if configured, else ``default``."""
    from django.db import router

    from apps.corpus.models import Chunk

    return router.db_for_read(Chunk, search=True) or "default"


class SearchReplicaRouter:
    def db_for_read(self, model, **hints):
        if hints.get("search") and REPLICA in settings.DATABASES:
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None
