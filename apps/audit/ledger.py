"""The erasure ledger: one authenticated line per erasure, outside the database.

The ledger (``RAG_AUDIT_ERASURE_LEDGER``, next to the master key) outlives a restore of an
older backup: a key it lists is never used again, and ``manage.py audit_apply_erasures``
re-applies each erasure to the restored database (keys, and the history rows and documents
it removed: apps.answering.erasure). Since it drives destruction, it is a control file and
authenticated (security review M4): each line is ``{"entry": {...}, "mac": hex}``, the
HMAC-SHA256 of the entry's canonical JSON under a key derived from the master key (HKDF info
``rag-audit-ledger/1``; apps.audit.keys.derived_key). A line that does not parse, lacks its
MAC (written by hand, or by a release before the MAC) or does not authenticate (altered, or
written without the master key) is skipped: it neither makes readers refuse a key nor makes
anything be destroyed, and it is reported (``read().problems``: logged, shown on the audit
pages, printed by ``audit_apply_erasures``). Nothing else stops: every question still records.

An entry: ``key_ids`` and ``keys`` ([id, scope, subject] each), ``subjects``, ``documents``
([{"id", "sha256"}], for a document erasure), ``sequence`` and ``hash`` of its
``audit.erased`` event, ``erased_at``, ``erased_by``, ``reason``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.audit.chain import canonical_json

LABEL = "rag-audit-ledger/1"
logger = logging.getLogger("apps.audit.ledger")


@dataclass(frozen=True)
class LedgerRead:
    entries: list[dict] = field(default_factory=list)  # authenticated only
    problems: list[str] = field(default_factory=list)  # one per skipped line

    def key_ids(self) -> set[int]:
        return {int(i) for entry in self.entries for i in entry.get("key_ids", [])}


def path() -> Path:
    return Path(settings.AUDIT_ERASURE_LEDGER)


def _mac(entry: dict) -> str:
    from apps.audit.keys import derived_key

    return hmac.new(derived_key(LABEL), canonical_json(entry).encode(), "sha256").hexdigest()


_cache: dict[tuple, LedgerRead] = {}


def read() -> LedgerRead:
    """The authenticated entries and what was skipped. Re-read whenever the file changed
    (size, mtime, inode), so an erasure in another process takes effect at once."""
    ledger = path()
    try:
        stat = ledger.stat()
    except FileNotFoundError:
        return LedgerRead()
    stamp = (str(ledger), stat.st_ino, stat.st_size, stat.st_mtime_ns, str(settings.AUDIT_MASTER_KEY_FILE))
    if stamp in _cache:
        return _cache[stamp]
    result = LedgerRead()
    for number, line in enumerate(ledger.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            entry, mac = record["entry"], record["mac"]
            valid = isinstance(entry, dict) and isinstance(mac, str) and hmac.compare_digest(mac, _mac(entry))
        except (ValueError, KeyError, TypeError):
            valid = False
        if valid:
            result.entries.append(entry)
        else:
            result.problems.append(f"erasure ledger {ledger} line {number}: not authenticated (not written by this "
                                   "platform with its master key, or altered); skipped")
    for problem in result.problems:
        logger.error("%s", problem)
    _cache.clear()
    _cache[stamp] = result
    return result


def append(entry: dict) -> None:
    """One authenticated line per erasure, appended and fsynced (opened O_APPEND, created 0600)."""
    ledger = path()
    ledger.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps({"entry": entry, "mac": _mac(entry)}, sort_keys=True, ensure_ascii=False)
    fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def erased_keys() -> dict[int, tuple[str, int] | None]:
    """{key id: (scope, subject) it belonged to, or None if the entry does not say}."""
    out: dict[int, tuple[str, int] | None] = {}
    for entry in read().entries:
        owners = {int(k[0]): (str(k[1]), int(k[2])) for k in entry.get("keys", []) if len(k) == 3}
        for key_id in entry.get("key_ids", []):
            out[int(key_id)] = owners.get(int(key_id))
    return out
