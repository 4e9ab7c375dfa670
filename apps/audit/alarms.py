"""Detection before signing, and the alarm that does not depend on the database.

Before each head, the checkpointer (apps.audit.checkpoints) compares the database with what
was witnessed outside it: the newest lines of the witness file and the exported head file
of the newest witnessed head. A witnessed head missing from the database, a database whose
newest event is behind the witnessed head, or two heads with one number (a fork) mean the
trail was cut or rewritten: the signer then signs nothing (a new head would bless the
shortened chain) and raises the alarm.

The alarm goes (1) to the log at CRITICAL, (2) as a line ``{"alarm": {...}}`` to the witness
file (and syslog when RAG_AUDIT_WITNESS_SYSLOG is on), the same file the operator copies
off the machine, and (3) to the ``IntegrityRun`` table, signed, which the audit pages show
as a red banner (apps.audit.monitoring). (1) and (2) need no database; (3) is best effort.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.utils import timezone

from apps.audit.chain import canonical_json
from apps.audit.checkpoints import ChainDoesNotVerify
from apps.audit.models import AuditCheckpoint, AuditEvent
from apps.audit.witness import witness_append, witness_tail

logger = logging.getLogger(__name__)


class TrailDiscrepancy(ChainDoesNotVerify):
    """The database disagrees with the witness or the exported heads: nothing is signed."""


def _trusted_witness_heads(public_hex: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Witness lines whose head verifies with this signer's key, or with a key that a head
    signed by this key's predecessor rotated to (one hop is enough per run: lines of older
    keys verify with the key named in them and lead to ours)."""
    from apps.audit.checkpoints import head_verifies

    trusted = {public_hex}
    for document in documents:
        statement = document.get("statement") or {}
        if statement.get("next_public_key") == public_hex and statement.get("public_key"):
            trusted.add(statement["public_key"])
    heads = []
    for document in documents:
        statement = document.get("statement")
        if not isinstance(statement, dict) or statement.get("public_key") not in trusted:
            continue
        if head_verifies(canonical_json(statement), document.get("signature", ""), statement["public_key"]):
            heads.append(statement)
    return heads


def check_before_signing(public_hex: str) -> list[str]:
    """What stops the signer: discrepancies between the database and the witness / files."""
    from apps.audit.checkpoints import checkpoint_dir, checkpoint_file

    heads = _trusted_witness_heads(public_hex, witness_tail())
    if not heads:
        return []
    problems: list[str] = []
    digests: dict[int, set[str]] = {}
    for statement in heads:
        digests.setdefault(int(statement["number"]), set()).add(hashlib.sha256(canonical_json(statement).encode()).hexdigest())
    for number, found in sorted(digests.items()):
        if len(found) > 1:
            problems.append(f"two signed heads with number {number} in the witness file (a fork)")
    rows = dict(AuditCheckpoint.objects.filter(number__in=list(digests)).values_list("number", "digest"))
    for number, found in sorted(digests.items()):
        if number not in rows:
            problems.append(f"signed head {number} is in the witness file but missing from the database")
        elif rows[number] not in found:
            problems.append(f"two heads with number {number}: the database's differs from the witnessed one")
    newest = max(heads, key=lambda s: int(s["number"]))
    database_head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    witnessed = int(newest["last_sequence"])
    if database_head < witnessed:
        problems.append(f"the database ends at event #{database_head}, behind the witnessed head {newest['number']} "
                        f"(through #{witnessed}): events #{database_head + 1}..#{witnessed} are missing")
    file = checkpoint_file(int(newest["number"]), checkpoint_dir())
    if not file.is_file():
        problems.append(f"the exported file of signed head {newest['number']} is missing ({file.name})")
    else:
        try:
            exported = json.loads(file.read_text()).get("statement")
        except (ValueError, OSError):
            exported = None
        if exported != newest:
            problems.append(f"the exported file of signed head {newest['number']} differs from the witnessed head")
    return problems


def foreign_head_rows(public_hex: str, after_number: int, *, limit: int = 50) -> list[str]:
    """Head rows newer than this signer's own newest head that it did not sign (the
    application role may INSERT rows): reported and passed over, never built upon; they do
    not stop the signer, which numbers its next head after them."""
    from apps.audit.checkpoints import head_verifies

    found = []
    for row in AuditCheckpoint.objects.filter(number__gt=after_number).order_by("number")[:limit].iterator():
        key = json.loads(row.statement).get("public_key", "") if row.statement.startswith("{") else ""
        if key != public_hex or not head_verifies(row.statement, row.signature, key):
            found.append(f"head row {row.number} was not signed by the audit signer (forged)")
    return found


def raise_alarm(problems: list[str], *, kind: str) -> None:
    """Log, witness-file line (+ syslog), then the signed IntegrityRun row (best effort)."""
    logger.critical("AUDIT TRAIL ALARM (%s): %s", kind, "; ".join(problems))
    previous = [d["alarm"] for d in witness_tail(64 * 1024) if isinstance(d.get("alarm"), dict)]
    if not previous or previous[-1].get("problems") != problems:  # one line per new finding, not per minute
        try:
            witness_append({"alarm": {"time": timezone.now().isoformat(timespec="microseconds"), "kind": kind,
                                      "problems": problems}}, syslog_tag="rag-audit-ALARM")
        except OSError:
            logger.exception("the audit alarm could not be written to the witness file")
    try:
        from apps.audit.monitoring import record_run

        record_run(kind=kind, ok=False, problems=problems)
    except Exception:  # the database may be what is broken: the log and the witness have it
        logger.exception("the audit alarm could not be recorded in the database")
