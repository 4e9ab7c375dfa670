"""The master key file, the data keys in ``audit_datakey`` and the erasure ledger.

The master key (``RAG_AUDIT_MASTER_KEY_FILE``, default ``<data dir>/keys/audit-master.key``,
32 random bytes in hex, mode 0600) is created once at install (the embedded stack's first
start, deploy/compose/make-secrets.sh, or ``manage.py audit_master_key --create``); a missing
one is never made up silently, and a file readable by group or others is refused. Web,
workers and beat need it (they seal and read content); it is not in the database or in a
backup.

The erasure ledger (``RAG_AUDIT_ERASURE_LEDGER``, next to the master key; apps.audit.ledger,
each line authenticated) lists every destroyed key with its ``audit.erased`` event. A key it
lists is never used, even if a restored backup brought its row back (``manage.py
audit_apply_erasures`` deletes it again).
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from django.apps import apps as django_apps
from django.conf import settings
from django.db import connections, transaction

from apps.audit import crypto
from apps.audit.models import DataKey


class MasterKeyUnavailable(RuntimeError):
    """The master key file is missing, unreadable, malformed or too open."""


def master_key_path() -> Path:
    return Path(settings.AUDIT_MASTER_KEY_FILE)


def master_key_problem(path: Path | None = None) -> str:
    """Why the master key cannot be used, or ""."""
    path = path or master_key_path()
    if not path.exists():
        return (f"audit master key {path} is missing: restore it from your key store, or create the first one with "
                "`manage.py audit_master_key --create` (the embedded stack does this at its first start)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"audit master key {path} has mode {mode:o}: make it readable by the service user only (chmod 600 {path})"
    return ""


def load_master_key() -> bytes:
    path = master_key_path()
    if problem := master_key_problem(path):
        raise MasterKeyUnavailable(problem)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) != crypto.KEY_BYTES:
        raise MasterKeyUnavailable(f"audit master key {path} must hold 64 hex digits (32 bytes)")
    return key


def generate_master_key_file(path: Path | None = None) -> Path:
    """Create the master key (mode 0600); refuses to overwrite one."""
    path = path or master_key_path()
    crypto.create_key_file(path)
    return path


def derived_key(label: str) -> bytes:
    """A key for one purpose, derived from the master key (HKDF-SHA256 with ``label`` as its
    info, e.g. "rag-audit-ledger/1"): never the master key itself, never another purpose's."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=crypto.KEY_BYTES, salt=None,
                info=label.encode()).derive(load_master_key())


def search_term_digest(term: str) -> str:
    """HMAC-SHA256 of a review search term (casefolded) under its own derived key: the trail
    records that and what was searched for, comparable by whoever holds the master key,
    without keeping a name the officer typed in the clear (security review M7c)."""
    import hmac

    return hmac.new(derived_key("rag-audit-search-term/1"), term.casefold().encode(), "sha256").hexdigest()


# --- the erasure ledger (apps.audit.ledger) -------------------------------------------------

def ledger_path() -> Path:
    return Path(settings.AUDIT_ERASURE_LEDGER)


def ledger_entries() -> list[dict]:
    """The authenticated entries (apps.audit.ledger.read: bad lines are skipped, reported)."""
    from apps.audit import ledger

    return ledger.read().entries


def ledger_key_ids() -> set[int]:
    from apps.audit import ledger

    return ledger.read().key_ids()


def ledger_append(entry: dict) -> None:
    from apps.audit import ledger

    ledger.append(entry)


def _erased(key_id: int, scope: str, subject: int, erased: dict[int, tuple[str, int] | None]) -> bool:
    """The ledger lists this key row (the same id and, where the entry says, the same owner:
    an id reused after a restore for another subject's new key is not the erased one)."""
    return key_id in erased and erased[key_id] in (None, (scope, subject))


# --- data keys ----------------------------------------------------------------------------

def ensure_keys(subjects: Iterable[tuple[str, int]], *, using: str = "default",
                cache: dict | None = None) -> dict[tuple[str, int], tuple[int, bytes]]:
    """{(scope, subject): (key id, key)} for each subject, creating the missing keys (a
    concurrent creator of the same key wins and its key is used).

    A document key is created only while its Document row exists, under a row lock: a
    question recorded while the document is being deleted cannot make a fresh key after the
    deletion destroyed the old one. Such a document is left out of the result. ``cache``
    (one batch of events) saves the look-ups of keys already found in it."""
    wanted = sorted(set(subjects))
    if cache is not None and all(s in cache for s in wanted):
        return {s: cache[s] for s in wanted if cache[s] is not None}
    if not wanted:
        return {}
    master = load_master_key()
    found = _rows(wanted, using)
    missing = [s for s in wanted if s not in found]
    if missing:
        master_id = crypto.master_key_id(master)
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            documents = [subject for scope, subject in missing if scope == DataKey.Scope.DOCUMENT]
            alive = set()
            if documents:
                Document = django_apps.get_model("corpus", "Document")  # the audit app imports no other app
                alive = set(Document.objects.using(using).select_for_update(no_key=True)
                            .filter(id__in=documents).values_list("id", flat=True))
            for scope, subject in missing:
                if scope == DataKey.Scope.DOCUMENT and subject not in alive:
                    continue
                wrapped = crypto.wrap_key(master, crypto.new_key(), scope=scope, subject_id=subject)
                cursor.execute(
                    "INSERT INTO audit_datakey (scope, subject_id, created_at, wrapped, master_key_id)"
                    " VALUES (%s, %s, now(), %s, %s) ON CONFLICT (scope, subject_id) DO NOTHING",
                    [scope, subject, wrapped, master_id])
            found.update(_rows(missing, using))
    from apps.audit.ledger import erased_keys

    erased = erased_keys()
    result = {}
    for subject, (key_id, wrapped) in found.items():
        if _erased(key_id, subject[0], subject[1], erased):  # a restored row the ledger says is gone: never seal with it again
            raise crypto.ContentUnreadable(f"data key {key_id} was erased (ledger); run manage.py audit_apply_erasures")
        result[subject] = (key_id, crypto.unwrap_key(master, wrapped, scope=subject[0], subject_id=subject[1]))
    if cache is not None:
        cache.update({s: result.get(s) for s in wanted})
    return result


def _rows(subjects: list[tuple[str, int]], using: str) -> dict[tuple[str, int], tuple[int, bytes]]:
    from django.db.models import Q

    query = Q()
    for scope, subject in subjects:
        query |= Q(scope=scope, subject_id=subject)
    return {(scope, subject): (pk, bytes(wrapped)) for pk, scope, subject, wrapped in
            DataKey.objects.using(using).filter(query).values_list("id", "scope", "subject_id", "wrapped")}


def keys_by_id(key_ids: Iterable[int], *, using: str = "default") -> dict[int, bytes]:
    """The unwrapped keys among ``key_ids`` that still exist and are not in the ledger.
    Never cached across calls: an erasure in another process takes effect at once."""
    from apps.audit.ledger import erased_keys

    erased = erased_keys()
    ids = {i for i in key_ids if not (i in erased and erased[i] is None)}  # listed, owner not recorded: gone
    if not ids:
        return {}
    master = load_master_key()
    return {pk: crypto.unwrap_key(master, bytes(wrapped), scope=scope, subject_id=subject)
            for pk, scope, subject, wrapped in
            DataKey.objects.using(using).filter(id__in=ids).values_list("id", "scope", "subject_id", "wrapped")
            if not _erased(pk, scope, subject, erased)}
