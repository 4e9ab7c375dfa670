"""Signed checkpoints: a periodic, signed statement of the chain head, exported off the database.

A checkpoint signs {number, last sequence, head hash, count, time, previous checkpoint digest}
with the Ed25519 key (apps.audit.signing). Each is stored in the database and written as a
file to ``AUDIT_CHECKPOINT_DIR``, which the operator copies off the machine: whoever
truncates or rewrites the table later cannot make it agree with a checkpoint they cannot
re-sign, nor with the copies they cannot reach.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import GENESIS_HASH, canonical_json
from apps.audit.models import AuditCheckpoint

logger = logging.getLogger(__name__)
FORMAT = "rag-audit-checkpoint/1"
_CHAIN_LOCK_KEY = 0x52414741  # the writers' lock (apps.audit.services): the head cannot move


def checkpoint_dir() -> Path:
    path = Path(settings.AUDIT_CHECKPOINT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_file(number: int, directory: Path | None = None) -> Path:
    return (directory or checkpoint_dir()) / f"checkpoint-{number:08d}.json"


def audit_checkpoint_create() -> AuditCheckpoint | None:
    """Verify the chain, then sign and export its head. Returns None if the chain is broken.

    Signing a chain that does not verify would bless the tampering, so a broken chain is
    logged and left for ``manage.py audit_verify`` to name.
    """
    from apps.audit.services import audit_verify_chain

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        report = audit_verify_chain()
        if not report.ok:
            logger.error("audit chain does not verify at #%s (%s): no checkpoint signed",
                         report.first_bad_sequence, report.problem)
            return None
        previous = AuditCheckpoint.objects.order_by("-number").first()
        statement: dict[str, Any] = {
            "format": FORMAT,
            "number": (previous.number + 1) if previous else 1,
            "last_sequence": report.head_sequence,
            "head_hash": report.head_hash,
            "count": report.events_checked + report.tombstones,
            "time": timezone.now().isoformat(timespec="microseconds"),
            "previous": previous.digest if previous else GENESIS_HASH,
        }
        text = canonical_json(statement)
        signature, public_hex = signing.sign(text.encode())
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
            key_id=signing.key_id(public_hex),
        )
    export_checkpoint(checkpoint, public_hex)
    return checkpoint


def export_checkpoint(checkpoint: AuditCheckpoint, public_hex: str) -> Path:
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
    return path


def read_checkpoint_files(directory: Path) -> dict[int, dict[str, Any]]:
    found = {}
    if directory.is_dir():
        for path in sorted(directory.glob("checkpoint-*.json")):
            document = json.loads(path.read_text())
            found[int(document["statement"]["number"])] = document
    return found


def latest_checkpoint() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-number").first()
