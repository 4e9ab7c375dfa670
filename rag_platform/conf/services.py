"""Services: the database (DATABASE_URL or the embedded PostgreSQL) and Celery (broker, results,
workers, time limits; rag_platform.conf.ingestion raises the time limits to fit a parse)."""

from __future__ import annotations

import os

import dj_database_url

from rag_platform.conf.core import DATA_DIR
from rag_platform.conf.env import env_float, env_int
from rag_platform.process.runtime import endpoint, secret_from_env_or_file

# --- Database: DATABASE_URL, else the embedded PostgreSQL of the running stack ----------
_database_url = endpoint("DATABASE_URL")
if _database_url:
    # A kept connection is checked before a request reuses it: after a PostgreSQL restart every
    # thread's old connection is dead, and without the check its next request was a 500.
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
else:
    # No stack running and nothing configured: keep Django importable (collectstatic,
    # check); any query fails with a message that says what to do.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "HOST": str(DATA_DIR / "run" / "no-database-configured"),
        }
    }
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 10)
# Two roles (README "Database roles"): DATABASE_URL is the application role for web,
# workers and beat; migrations run with the owner's URL as DATABASE_URL. The owner's
# credentials, for owner-only commands (audit_expire), come from the environment only,
# never from the stack file that every process reads.
DATABASE_APP_ROLE = os.environ.get("RAG_DATABASE_APP_ROLE", "rag_app")
# The Celery workers' role (parse children descend from them): the application role's grants
# minus the session and credential tables (apps.audit.grants.WORKER_DENIED).
DATABASE_WORKER_ROLE = os.environ.get("RAG_DATABASE_WORKER_ROLE", "rag_worker")
_owner_url = secret_from_env_or_file("RAG_DATABASE_OWNER_URL")
if _owner_url:
    DATABASES["owner"] = dj_database_url.parse(_owner_url, conn_max_age=0)
    DATABASES["owner"].setdefault("OPTIONS", {})["connect_timeout"] = 10
# Searches (only searches) may read from a streaming replica of the primary (a hot standby):
# DATABASE_REPLICA_URL, the application role's URL on it (apps.retrieval.routers). Unset: one
# server. Tests mirror it onto the test database.
_replica_url = secret_from_env_or_file("DATABASE_REPLICA_URL")
if _replica_url:
    DATABASES["replica"] = dj_database_url.parse(_replica_url, conn_max_age=60, conn_health_checks=True)
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = 10
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["apps.retrieval.routers.SearchReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery: CELERY_BROKER_URL, else the embedded Redis of the running stack -----------
CELERY_BROKER_URL = endpoint("CELERY_BROKER_URL") or "redis+socket://" + str(
    DATA_DIR / "run" / "no-broker-configured.sock"
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Results only for the signer's on-demand tasks (an export manifest to sign, a head now).
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "rpc://")
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process loads the parsers and the embedding model before it reports for work
# (apps.ingestion.warming.warm_pool_process); the first start also exports the ONNX graph.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 600.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("INGEST_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("INGEST_TIME_LIMIT", 660)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
