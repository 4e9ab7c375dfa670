"""Everything ``manage.py audit_verify`` checks, against the database and the exported files.

1. The hash chain (apps.audit.services.audit_verify_chain): edited, deleted or reordered rows.
2. Tombstones: every removed event is listed by a signed-into-the-chain retention event.
3. Checkpoints, from the database and from the exported files: signature by the trusted
   key, link to the previous checkpoint, and agreement with the chain. A checkpoint that
   covers more events than the table holds means the table was truncated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from apps.audit import signing
from apps.audit.chain import GENESIS_HASH, body_of, canonical_json, event_hash
from apps.audit.checkpoints import checkpoint_dir, read_checkpoint_files
from apps.audit.models import AuditCheckpoint, AuditEvent, AuditTombstone, EventType


@dataclass
class VerificationReport:
    ok: bool = True
    events_checked: int = 0
    head_sequence: int = 0
    checkpoints_checked: int = 0
    first_bad_sequence: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str, sequence: int | None = None) -> None:
        self.ok = False
        self.problems.append(problem)
        if sequence is not None and (self.first_bad_sequence is None or sequence < self.first_bad_sequence):
            self.first_bad_sequence = sequence


def audit_verify_all(*, directory: Path | None = None, public_key_hex: str | None = None) -> VerificationReport:
    from apps.audit.services import audit_verify_chain

    report = VerificationReport()
    chain = audit_verify_chain()
    report.events_checked = chain.events_checked
    report.head_sequence = chain.head_sequence
    if not chain.ok:
        report.fail(f"event #{chain.first_bad_sequence}: {chain.problem}", chain.first_bad_sequence)
    _verify_tombstones(report)
    _verify_checkpoints(report, directory or checkpoint_dir(), public_key_hex or signing.local_public_key_hex())
    return report


def _verify_tombstones(report: VerificationReport) -> None:
    listed: set[int] = set()
    for payload in AuditEvent.objects.filter(event_type=EventType.AUDIT_EXPIRED).values_list("payload", flat=True):
        listed.update(int(s) for s in payload.get("sequences", []))
    for sequence in AuditTombstone.objects.values_list("sequence", flat=True):
        if sequence not in listed:
            report.fail(f"event #{sequence}: removed without a retention record", sequence)
        elif AuditEvent.objects.filter(sequence=sequence).exists():
            report.fail(f"event #{sequence}: both present and tombstoned", sequence)


def _verify_checkpoints(report: VerificationReport, directory: Path, trusted_key: str) -> None:
    from_db = {c.number: c for c in AuditCheckpoint.objects.all()}
    from_files = read_checkpoint_files(directory)
    statements: dict[int, dict] = {}
    for number, checkpoint in from_db.items():
        statement = json.loads(checkpoint.statement)
        if not signing.verify(checkpoint.statement.encode(), checkpoint.signature, trusted_key):
            report.fail(f"checkpoint {number} (database): signature does not verify with the trusted key")
        statements[number] = statement
    for number, document in from_files.items():
        text = canonical_json(document["statement"])
        if document.get("public_key") != trusted_key or not signing.verify(text.encode(), document["signature"], trusted_key):
            report.fail(f"checkpoint {number} (file): signature does not verify with the trusted key")
            continue
        if number not in statements:
            report.fail(f"checkpoint {number}: exported file exists but the database row is gone")
            statements[number] = document["statement"]
        elif statements[number] != document["statement"]:
            report.fail(f"checkpoint {number}: database row differs from the exported file")
    hashes = dict(AuditEvent.objects.values_list("sequence", "hash"))
    hashes.update(AuditTombstone.objects.values_list("sequence", "hash"))
    previous_digest = GENESIS_HASH
    for number in sorted(statements):
        statement = statements[number]
        if statement["previous"] != previous_digest and number - 1 in statements:
            report.fail(f"checkpoint {number}: does not link to checkpoint {number - 1}")
        previous_digest = hashlib.sha256(canonical_json(statement).encode()).hexdigest()
        last = int(statement["last_sequence"])
        if last > report.head_sequence and last not in hashes:
            report.fail(
                f"checkpoint {number} covers events through #{last}, but the verified trail ends at "
                f"#{report.head_sequence}: events were truncated",
                report.head_sequence + 1,
            )
        elif last and hashes.get(last) != statement["head_hash"]:
            report.fail(f"checkpoint {number}: event #{last} does not have the signed head hash", last)
        elif sum(1 for s in hashes if s <= last) != int(statement["count"]):
            missing = next((s for s in range(1, last + 1) if s not in hashes), last)
            report.fail(f"checkpoint {number}: signed count {statement['count']} does not match the trail", missing)
        report.checkpoints_checked += 1
    if statements:
        numbers = sorted(statements)
        gaps = [n for n in range(1, numbers[-1] + 1) if n not in statements]
        if gaps:
            report.fail(f"checkpoints missing: {gaps[:10]}")


@dataclass
class EventIntegrity:
    """What can be checked about one event without walking the whole trail.

    Its own hash, its link to the event (or tombstone) before it, the next event's link to
    it, and the first signed checkpoint at or after it. The whole chain up to that
    checkpoint is what ``manage.py audit_verify`` (and every checkpoint) checks.
    """

    content_ok: bool
    previous_sequence: int  # 0: the start of the trail
    previous_ok: bool
    next_sequence: int | None  # None: the newest event (or the next one expired)
    next_ok: bool | None
    checkpoint: AuditCheckpoint | None
    checkpoint_ok: bool | None  # signature verifies with this installation's key
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_event_verify(event: AuditEvent) -> EventIntegrity:
    problems: list[str] = []
    content_ok = event_hash(event.sequence, event.prev_hash, body_of(event)) == event.hash
    if not content_ok:
        problems.append("its content does not match its hash (edited)")
    previous_sequence = event.sequence - 1
    if previous_sequence == 0:
        expected_prev: str | None = GENESIS_HASH
    else:
        expected_prev = (
            AuditEvent.objects.filter(sequence=previous_sequence).values_list("hash", flat=True).first()
            or AuditTombstone.objects.filter(sequence=previous_sequence).values_list("hash", flat=True).first()
        )
    previous_ok = expected_prev is not None and event.prev_hash == expected_prev
    if expected_prev is None:
        problems.append(f"event #{previous_sequence} before it is missing (deleted)")
    elif not previous_ok:
        problems.append(f"its link to event #{previous_sequence} is broken (deleted or reordered)")
    next_prev = AuditEvent.objects.filter(sequence=event.sequence + 1).values_list("prev_hash", flat=True).first()
    next_ok = None if next_prev is None else next_prev == event.hash
    if next_ok is False:
        problems.append(f"event #{event.sequence + 1} after it does not link to it")
    checkpoint = AuditCheckpoint.objects.filter(last_sequence__gte=event.sequence).order_by("number").first()
    checkpoint_ok = None
    if checkpoint is not None:
        checkpoint_ok = signing.verify(checkpoint.statement.encode(), checkpoint.signature, signing.local_public_key_hex())
        if not checkpoint_ok:
            problems.append(f"checkpoint #{checkpoint.number} does not verify with this installation's key")
    return EventIntegrity(content_ok, previous_sequence, previous_ok, event.sequence + 1 if next_ok is not None else None,
                          next_ok, checkpoint, checkpoint_ok, problems)
