"""Celery beat's schedule, in one place: every periodic task, how often, and on which queue.

The intervals are the areas' settings (audit, ingestion, security); beat runs in one process
(the stack's, or the deployment's beat unit) and only sends: the workers run the tasks.
"""

from __future__ import annotations

from rag_platform.conf.audit import AUDIT_CHECKPOINT_MINUTES, AUDIT_VERIFY_MINUTES
from rag_platform.conf.core import DATA_DIR
from rag_platform.conf.ingestion import INGEST_HOUSEKEEPING_SECONDS
from rag_platform.conf.security import AUTH_FAILURE_WINDOW_SECONDS

CELERY_BEAT_SCHEDULE = {
    # The signer's (queue "audit"): a signed head, and the incremental verification.
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": AUDIT_CHECKPOINT_MINUTES * 60.0,
                         "options": {"queue": "audit", "expires": AUDIT_CHECKPOINT_MINUTES * 60.0}},
    "audit-verify": {"task": "audit.verify", "schedule": AUDIT_VERIFY_MINUTES * 60.0,
                     "options": {"queue": "audit", "expires": AUDIT_VERIFY_MINUTES * 60.0}},
    # Expired claims and unsent documents get new tasks (apps.ingestion.housekeeping).
    "ingestion-housekeeping": {
        "task": "apps.ingestion.tasks.ingestion_housekeeping", "schedule": INGEST_HOUSEKEEPING_SECONDS,
    },
    # One audit event per window of failed sign-ins (apps.accounts.failures).
    "auth-failures-summarise": {
        "task": "accounts.summarise_auth_failures", "schedule": float(AUTH_FAILURE_WINDOW_SECONDS),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "run" / "celerybeat-schedule")
