"""Signed heads ("checkpoints"): the signer's statement of the chain head, witnessed off the database.

The signer (the only process with the key, apps.audit.signing) signs {number, last
sequence, head hash, count, time, previous head's digest, key, retention policy} every
``AUDIT_CHECKPOINT_MINUTES`` (default 1) and on demand, only when the head moved. Each head
is stored in the database, written as a file to ``AUDIT_CHECKPOINT_DIR`` and appended to the
witness file (apps.audit.witness). Before signing, the signer verifies only the events
since its previous head (whose signature it checks), without the writers' lock: cost per
head is the events since the last one, not the whole trail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import GENESIS_HASH, canonical_json
from apps.audit.models import AuditCheckpoint, AuditEvent
from apps.audit.witness import witness_append

logger = logging.getLogger(__name__)
FORMAT = "rag-audit-checkpoint/3"  # signed over signing.HEAD_DOMAIN


class ChainDoesNotVerify(RuntimeError):
    """The chain is broken since the last signed head: signing would bless the tampering."""


def checkpoint_dir() -> Path:
    path = Path(settings.AUDIT_CHECKPOINT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_file(number: int, directory: Path | None = None) -> Path:
    return (directory or checkpoint_dir()) / f"checkpoint-{number:08d}.json"


def retention_policy() -> dict[str, Any]:
    """The retention policy in force, part of every signed head (apps.audit.verification
    checks each expiry against the policy signed before it)."""
    return {"default_days": settings.AUDIT_RETENTION_DEFAULT_DAYS, "by_class": dict(sorted(settings.AUDIT_RETENTION_DAYS.items()))}


def head_verifies(text: str, signature: str, public_hex: str) -> bool:
    """Whether a head's signature verifies: format 3 over signing.HEAD_DOMAIN; heads of
    earlier formats were signed without a domain (by a signer that signed any text, so
    apps.audit.verification trusts no key rotation they name)."""
    try:
        legacy = json.loads(text).get("format") != FORMAT
    except (ValueError, AttributeError):
        return False
    if legacy:
        return signing.verify(text.encode(), signature, public_hex)
    return signing.verify_statement(signing.HEAD_DOMAIN, text, signature, public_hex)


def own_latest_head(public_hex: str) -> AuditCheckpoint | None:
    """The newest head row signed by this key, or the rotation head (signed by the key
    before) that named it. Rows it did not sign (the application role may INSERT
    checkpoints) are passed over, never built upon: apps.audit.alarms reports them."""
    own = AuditCheckpoint.objects.filter(key_id=signing.key_id(public_hex))
    rotation = AuditCheckpoint.objects.filter(statement__contains=f'"next_public_key":"{public_hex}"')
    best = None
    for rows in (own, rotation):
        for row in rows.order_by("-number")[:1000].iterator():
            statement = json.loads(row.statement)
            legacy_rotation = statement.get("format") != FORMAT and statement.get("next_public_key")
            if (statement.get("public_key") == public_hex or statement.get("next_public_key") == public_hex) and \
                    not legacy_rotation and head_verifies(row.statement, row.signature, statement.get("public_key", "")):
                best = row if best is None or row.number > best.number else best
                break
    return best


def audit_checkpoint_create(*, force: bool = False, extra: dict[str, Any] | None = None) -> AuditCheckpoint | None:
    """Sign the head if it moved since the last signed head (or ``force``); None if unchanged.

    Everything signed is read by the signer itself: the chain since its own previous head
    (verified), the format-2 start carried from that head, the retention policy. ``extra``
    only from the signer host's own commands (``audit_rotate_key``); no task passes it.
    Before signing, apps.audit.alarms compares the database with the witness file and the
    exported heads: on a discrepancy it raises the alarm and TrailDiscrepancy, and nothing
    is signed. Raises SigningKeyUnavailable outside the signer or without a key,
    ChainDoesNotVerify if the events since the last head do not verify.
    """
    from apps.audit.alarms import TrailDiscrepancy, check_before_signing, foreign_head_rows, raise_alarm
    from apps.audit.services import audit_verify_chain, format2_start

    key = signing.load_private_key()
    public_hex = signing.public_key_hex(key.public_key())
    if problems := check_before_signing(public_hex):
        raise_alarm(problems, kind="presign")
        raise TrailDiscrepancy("; ".join(problems))
    previous = own_latest_head(public_hex)
    if foreign := foreign_head_rows(public_hex, previous.number if previous else 0):
        raise_alarm(foreign, kind="presign")
    newest_number = AuditCheckpoint.objects.order_by("-number").values_list("number", flat=True).first() or 0
    head = AuditEvent.objects.order_by("-sequence").values("sequence", "hash").first()
    head_sequence = head["sequence"] if head else 0
    if previous and previous.last_sequence == head_sequence and not force:
        return None
    after_sequence, after_hash = 0, GENESIS_HASH
    previous_statement = json.loads(previous.statement) if previous else {}
    if previous and previous.last_sequence <= head_sequence:
        after_sequence, after_hash = previous.last_sequence, previous.head_hash  # vouched for by our own signature
    format2_from = int(previous_statement.get("format2_from") or 0) or format2_start()
    report = audit_verify_chain(after_sequence=after_sequence, after_hash=after_hash, through=head_sequence,
                                format2_from=format2_from or None)
    if not report.ok:
        logger.error("audit chain does not verify at #%s (%s): no head signed", report.first_bad_sequence, report.problem)
        raise_alarm([f"event #{report.first_bad_sequence}: {report.problem}"], kind="presign")
        raise ChainDoesNotVerify(f"event #{report.first_bad_sequence}: {report.problem}")
    statement: dict[str, Any] = {
        "format": FORMAT,
        "number": max(newest_number, previous.number if previous else 0) + 1,
        "last_sequence": report.head_sequence,
        "head_hash": report.head_hash,
        "count": report.head_sequence,  # places in the chain, events and tombstones: gap-free
        "time": timezone.now().isoformat(timespec="microseconds"),
        "previous": previous.digest if previous else GENESIS_HASH,
        "public_key": public_hex,
        "key_id": signing.key_id(public_hex),
        "retention": retention_policy(),
        **({"format2_from": format2_from} if format2_from else {}),
        **(extra or {}),
    }
    text = canonical_json(statement)
    signature, _ = signing.sign_statement(signing.HEAD_DOMAIN, text, key)
    checkpoint = AuditCheckpoint.objects.create(
        number=statement["number"],
        created_at=timezone.now(),
        last_sequence=statement["last_sequence"],
        head_hash=statement["head_hash"],
        event_count=statement["count"],
        previous_digest=statement["previous"],
        statement=text,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        signature=signature,
        key_id=statement["key_id"],
    )
    document = export_checkpoint(checkpoint, public_hex)
    witness_append(document)
    return checkpoint


def export_checkpoint(checkpoint: AuditCheckpoint, public_hex: str) -> dict[str, Any]:
    directory = checkpoint_dir()
    (directory / "audit-signing.pub").write_text(public_hex + "\n")
    document = {
        "statement": json.loads(checkpoint.statement),
        "digest": checkpoint.digest,
        "signature": checkpoint.signature,
        "public_key": public_hex,
    }
    path = checkpoint_file(checkpoint.number, directory)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return document


def read_checkpoint_files(directory: Path) -> dict[int, dict[str, Any]]:
    found = {}
    if directory.is_dir():
        for path in sorted(directory.glob("checkpoint-*.json")):
            document = json.loads(path.read_text())
            found[int(document["statement"]["number"])] = document
    return found


def latest_checkpoint() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-number").first()
