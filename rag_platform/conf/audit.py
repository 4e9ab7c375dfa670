"""Audit trail: checkpoints and signing, the pinned public key, the witness file, the master key
and erasure ledger, trusted proxies, retention, and the Celery beat schedule it starts."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from rag_platform.conf.core import DATA_DIR
from rag_platform.conf.env import env_bool, env_float, env_int, env_list

# --- Audit trail and egress guard (issue 6) ---
# Egress: RAG_EGRESS_ALLOW="10.0.0.0/8,db.internal:5432" (see rag_platform/process/egress.py).
AUDIT_CHECKPOINT_DIR = os.environ.get("RAG_AUDIT_CHECKPOINT_DIR") or str(DATA_DIR / "audit-checkpoints")
# The signer signs the chain head this often (only when it moved) and on demand.
AUDIT_CHECKPOINT_MINUTES = env_float("RAG_AUDIT_CHECKPOINT_MINUTES", 1.0)
# Only the signer process sets RAG_AUDIT_SIGNER=1 and can read the key (apps.audit.signing):
# from the file named here ("" = <data dir>/keys/audit-signing.key; the stack and the
# manifests give the variable to the signer only), or from RAG_AUDIT_SIGNING_KEY, which
# apps.audit.signing reads itself and is never a setting (rag_platform/conf/__init__.py).
AUDIT_SIGNER = env_bool("RAG_AUDIT_SIGNER", False)
AUDIT_SIGNING_KEY_FILE = os.environ.get("RAG_AUDIT_SIGNING_KEY_FILE", "")
# The operator's pin: the public key (hex) or "sha256:<fingerprint>", printed by audit_keygen.
AUDIT_PUBLIC_KEY = os.environ.get("RAG_AUDIT_PIN", "")
# Every signed head is appended here, outside the data directory (apps.audit.witness);
# copy it off the machine. Optional: also to the local syslog socket.
AUDIT_WITNESS_FILE = os.environ.get("RAG_AUDIT_WITNESS_FILE") or str(
    DATA_DIR.parent / f"{DATA_DIR.name}-witness" / "audit-witness.jsonl")
AUDIT_WITNESS_SYSLOG = env_bool("RAG_AUDIT_WITNESS_SYSLOG", False)
# Crypto-shredding (apps.audit.keys): the master key that wraps the data keys of audit
# content (mode 0600, never in the database or a backup), and next to it the erasure
# ledger that re-applies erasures to a restored backup.
AUDIT_MASTER_KEY_FILE = os.environ.get("RAG_AUDIT_MASTER_KEY_FILE") or str(DATA_DIR / "keys" / "audit-master.key")
AUDIT_ERASURE_LEDGER = os.environ.get("RAG_AUDIT_ERASURE_LEDGER") or str(
    Path(AUDIT_MASTER_KEY_FILE).parent / "audit-erasures.jsonl")
# Proxies whose X-Forwarded-For entries are believed (rag_platform.process.client_address): the
# audit trail's IP and sign-in throttling use the first address left of them.
TRUSTED_PROXIES = env_list("RAG_TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    import ipaddress

    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"RAG_TRUSTED_PROXIES: {_proxy!r} is not an address or network") from None
if env_bool("RAG_AUDIT_TRUST_X_FORWARDED_FOR", False):
    raise ImproperlyConfigured("RAG_AUDIT_TRUST_X_FORWARDED_FOR trusted any client's X-Forwarded-For; "
                               "set RAG_TRUSTED_PROXIES to your proxies' addresses instead")
# Retention in days per event class (the part before the dot); HIPAA asks for 6 years.
AUDIT_RETENTION_DEFAULT_DAYS = env_int("RAG_AUDIT_RETENTION_DAYS", 6 * 365 + 2)
AUDIT_RETENTION_DAYS = {
    item.split("=")[0].strip(): int(item.split("=")[1])
    for item in env_list("RAG_AUDIT_RETENTION_BY_CLASS", [])  # e.g. "auth=400,egress=2200"
}
# The signer's automatic, incremental verification (apps.audit.monitoring), shown on the
# audit pages; a failure raises the alarm (witness file, syslog, log, red banner).
AUDIT_VERIFY_MINUTES = env_float("RAG_AUDIT_VERIFY_MINUTES", 10.0)
