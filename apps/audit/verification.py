"""Everything ``manage.py audit_verify`` checks, in one pass over the trail.

1. The hash chain (apps.audit.services.audit_verify_chain): edited, deleted, reordered rows,
   forged tombstones.
2. Signed heads from the database, the exported checkpoint files and the witness file,
   each signed by the *pinned* key (or a key it rotated to in a head signed by a trusted
   key): each must match the chain at its sequence. A head beyond the database's last
   event means the trail was truncated: the missing range is named.
3. Tombstones: each counts only if the event listing it is a later ``audit.retention_expired``
   event written by the table owner's role (the expiry command), the removed event was
   older than the retention policy signed before the expiry, and no legal hold placed in
   the chain before the expiry (and not released) covered it.

The chain pass is linear in events; heads and tombstones cost a dictionary look-up each.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from apps.audit import signing
from apps.audit.chain import GENESIS_HASH, canonical_json, stored_hash
from apps.audit.checkpoints import FORMAT as CHECKPOINT_FORMAT
from apps.audit.checkpoints import checkpoint_dir, head_verifies, read_checkpoint_files
from apps.audit.models import AuditCheckpoint, AuditEvent, AuditTombstone, EventType
from apps.audit.witness import witness_path, witness_read


class NoPinnedKey(ValueError):
    """Verification without an operator-pinned key would trust whoever holds the database."""


@dataclass
class VerificationReport:
    ok: bool = True
    events_checked: int = 0
    head_sequence: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints_checked: int = 0
    witnessed_sequence: int = 0
    witnessed_at: str = ""
    first_bad_sequence: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str, sequence: int | None = None) -> None:
        self.ok = False
        self.problems.append(problem)
        if sequence is not None and (self.first_bad_sequence is None or sequence < self.first_bad_sequence):
            self.first_bad_sequence = sequence


def resolve_pin(public_key_hex: str | None = None) -> str:
    pin = (public_key_hex or signing.pinned_key() or "").strip()
    if not pin:
        raise NoPinnedKey("no pinned audit public key: pass --public-key (hex or sha256:<fingerprint>, printed by "
                          "`manage.py audit_keygen`) or set RAG_AUDIT_PIN")
    return pin


def audit_verify_all(*, directory: Path | None = None, public_key_hex: str | None = None,
                     witness: Path | None = None, from_last_head: bool = False,
                     after: tuple[int, str] | None = None) -> VerificationReport:
    """``from_last_head``: continue from the newest signed head (pinned key) that the
    database still reaches, instead of from the first event: cost = events since then.
    ``after`` (sequence, hash): continue from a place an earlier run verified (the scheduled
    verification, apps.audit.monitoring); the places before it are counted (none missing)
    and that place must still have that hash. Heads, witness and tombstones are checked
    whole either way (a look-up each)."""
    from apps.audit.services import audit_verify_chain, format2_start

    pin = resolve_pin(public_key_hex)
    report = VerificationReport()
    heads = _trusted_heads(report, directory or checkpoint_dir(), witness or witness_path(), pin)
    after_sequence, after_hash = 0, GENESIS_HASH
    if from_last_head:
        database_head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        reachable = [h for h in heads.values() if int(h["last_sequence"]) <= database_head]
        if reachable:
            start = max(reachable, key=lambda h: int(h["last_sequence"]))
            after_sequence, after_hash = int(start["last_sequence"]), start["head_hash"]
    if after is not None and after[0] > 0:
        after_sequence, after_hash = after
        _check_before(report, after_sequence, after_hash)
    expected: dict[int, list[tuple[int, str]]] = {}
    for number, statement in heads.items():
        if int(statement["last_sequence"]) > after_sequence:
            expected.setdefault(int(statement["last_sequence"]), []).append((number, statement["head_hash"]))

    def visit(sequence: int, hash_value: str) -> None:
        for number, head_hash in expected.pop(sequence, ()):
            report.checkpoints_checked += 1
            if head_hash != hash_value:
                report.fail(f"signed head {number}: event #{sequence} does not have the signed head hash", sequence)

    signed_starts = [int(h["format2_from"]) for h in heads.values() if h.get("format2_from")]
    format2_from = min(signed_starts) if signed_starts else format2_start()
    chain = audit_verify_chain(visit=visit, after_sequence=after_sequence, after_hash=after_hash,
                               format2_from=format2_from)
    report.events_checked, report.head_sequence, report.head_hash = chain.events_checked, chain.head_sequence, chain.head_hash
    if not chain.ok:
        report.fail(f"event #{chain.first_bad_sequence}: {chain.problem}", chain.first_bad_sequence)
    if heads:
        latest = heads[max(heads)]
        report.witnessed_sequence, report.witnessed_at = int(latest["last_sequence"]), latest["time"]
    beyond = sorted(s for s in expected if s > chain.head_sequence)
    if chain.ok and beyond:
        report.fail(f"events #{chain.head_sequence + 1}..#{beyond[-1]} are missing: signed head(s) "
                    f"{sorted(n for s in beyond for n, _ in expected[s])} witnessed the trail through #{beyond[-1]}, "
                    f"the database ends at #{chain.head_sequence}: events were truncated", chain.head_sequence + 1)
    _verify_tombstones(report, heads, format2_from)
    return report


def _check_before(report: VerificationReport, sequence: int, hash_value: str) -> None:
    """An incremental run's start: every place up to it still there, and it unchanged."""
    places = (AuditEvent.objects.filter(sequence__lte=sequence).count()
              + AuditTombstone.objects.filter(sequence__lte=sequence).count())
    if places != sequence:
        report.fail(f"{sequence - places} event(s) up to #{sequence} verified earlier are missing (deleted)", 1)
    current = (AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()
               or AuditTombstone.objects.filter(sequence=sequence).values_list("hash", flat=True).first())
    if current != hash_value:
        report.fail(f"event #{sequence}, verified earlier, no longer has the hash it had (edited or deleted)", sequence)


def _trusted_heads(report: VerificationReport, directory: Path, witness: Path, pin: str) -> dict[int, dict[str, Any]]:
    """Heads from the database, the checkpoint files and the witness file whose signature
    verifies with a trusted key; disagreements between the copies are problems."""
    copies: dict[int, list[tuple[str, str, str, str]]] = {}  # number -> [(where, text, signature, public key)]
    for c in AuditCheckpoint.objects.all():
        copies.setdefault(c.number, []).append(("database", c.statement, c.signature,
                                                json.loads(c.statement).get("public_key", "")))
    for number, document in read_checkpoint_files(directory).items():
        copies.setdefault(number, []).append(("file", canonical_json(document["statement"]), document["signature"],
                                              document.get("public_key", "")))
    for document in witness_read(witness):
        copies.setdefault(int(document["statement"]["number"]), []).append(
            ("witness", canonical_json(document["statement"]), document["signature"], document.get("public_key", "")))
    trusted: set[str] = set()
    foreign: dict[str, list[int]] = {}  # witness heads validly signed by a key that is not ours
    heads: dict[int, dict[str, Any]] = {}
    previous_digest = GENESIS_HASH
    for number in sorted(copies):
        accepted = None
        for where, text, signature, public_hex in copies[number]:
            statement = json.loads(text)
            key = statement.get("public_key") or public_hex or ("" if pin.startswith("sha256:") else pin)
            if not (key in trusted or signing.matches_pin(key, pin)) or not head_verifies(text, signature, key):
                if where == "witness" and key and head_verifies(text, signature, key):
                    foreign.setdefault(key, []).append(number)
                    continue
                report.fail(f"signed head {number} ({where}): not signed by the pinned key")
                continue
            if accepted is None:
                accepted = statement
            elif statement != accepted:
                report.fail(f"signed head {number}: the {where} copy differs from the others")
        wheres = {where for where, *_ in copies[number]}
        if "database" not in wheres and accepted is not None:
            report.fail(f"signed head {number}: witnessed ({', '.join(sorted(wheres))}) but the database row is gone")
        if accepted is None:
            continue
        trusted.add(accepted.get("public_key", ""))
        if accepted.get("next_public_key") and accepted.get("format") == CHECKPOINT_FORMAT:
            # A rotation, signed by the key it replaces, in a head only the signer builds
            # (format 3: no task can put a next key in it, apps.audit.tasks).
            trusted.add(accepted["next_public_key"])
        elif accepted.get("next_public_key"):
            report.fail(f"signed head {number}: names a next key in format {accepted.get('format')}, signed by a "
                        "signer that signed any text; not trusted (pin the new key if the rotation was yours)")
        if accepted["previous"] != previous_digest and number - 1 in heads:
            report.fail(f"signed head {number}: does not link to signed head {number - 1}")
        previous_digest = hashlib.sha256(canonical_json(accepted).encode()).hexdigest()
        heads[number] = accepted
    for key, numbers in foreign.items():
        report.fail(_foreign_witness_problem(witness, key, numbers, pin))
    if heads:
        numbers = sorted(n for n in copies if n <= max(heads))
        gaps = [n for n in range(1, min(numbers[0], 11)) if n not in copies]
        for low, high in zip(numbers, numbers[1:], strict=False):
            gaps += list(range(low + 1, min(high, low + 11)))
        if gaps:
            report.fail(f"signed heads missing everywhere: {gaps[:10]}")
    return heads


def _foreign_witness_problem(witness: Path, key: str, numbers: list[int], pin: str) -> str:
    """One line for the witness heads another key signed: which file, which key, what to check."""
    pinned = pin if pin.startswith("sha256:") else signing.fingerprint(pin)
    listed = ", ".join(map(str, numbers[:10])) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
    return (f"witness file {witness}: signed head(s) {listed} are validly signed by key {signing.fingerprint(key)}, "
            f"not by the pinned key {pinned}. Either this file holds another installation's heads (a copied, "
            f"restored or shared witness file: point RAG_AUDIT_WITNESS_FILE or --witness at this installation's "
            f"own file) or the heads were forged with another key; nothing in it was trusted")


def _table_owner() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'audit_auditevent'")
        row = cursor.fetchone()
    return row[0] if row else ""


def _verify_tombstones(report: VerificationReport, heads: dict[int, dict[str, Any]],
                       format2_from: int | None = None) -> None:
    tombstones = list(AuditTombstone.objects.order_by("sequence"))
    if not tombstones:
        return
    listings = {e.sequence: e for e in AuditEvent.objects.filter(
        sequence__in={t.expired_by_sequence for t in tombstones})}
    holds = list(AuditEvent.objects.filter(
        event_type__in=[EventType.LEGAL_HOLD_PLACED, EventType.LEGAL_HOLD_RELEASED]).order_by("sequence"))
    owner = _table_owner()
    present = set(AuditEvent.objects.filter(sequence__in=[t.sequence for t in tombstones]).values_list("sequence", flat=True))
    signed = sorted(heads.values(), key=lambda h: int(h["last_sequence"]))
    for tomb in tombstones:
        problem = _tombstone_problem(tomb, listings.get(tomb.expired_by_sequence), holds, owner, signed)
        if tomb.sequence in present:
            problem = "both present and tombstoned"
        if not tomb.content_sha256 and format2_from and tomb.sequence >= format2_from:
            problem = f"tombstone without a content hash after format 2 began at #{format2_from} (forged)"
        if problem:
            report.fail(f"event #{tomb.sequence}: {problem}", tomb.sequence)


def _tombstone_problem(tomb: AuditTombstone, listing: AuditEvent | None, holds: list[AuditEvent], owner: str,
                       signed: list[dict[str, Any]]) -> str:
    from apps.audit.retention import NEVER_EXPIRE

    if tomb.event_type in NEVER_EXPIRE:
        return f"a {tomb.event_type} event is kept for good and may not expire"
    if listing is None or listing.event_type != EventType.AUDIT_EXPIRED:
        return "removed without a retention record"
    if tomb.sequence not in {int(s) for s in listing.payload.get("sequences", [])}:
        return f"removed, but retention record #{listing.sequence} does not list it"
    if listing.sequence <= tomb.sequence:
        return f"retention record #{listing.sequence} is not later in the chain than the event it removed"
    if listing.hash_version >= 2 and (listing.db_role != owner or listing.db_role == settings.DATABASE_APP_ROLE
                                      or listing.payload.get("via") != "audit_expire"):
        return f"retention record #{listing.sequence} was not written by the expiry command as the owner"
    policy = None
    for head in signed:
        if int(head["last_sequence"]) < listing.sequence and head.get("retention"):
            policy = head["retention"]
    days = _retention_days(policy, tomb.event_type) if policy else None
    if days is None:
        if listing.hash_version >= 2:
            return f"no signed retention policy before retention record #{listing.sequence}"
        days = int((listing.payload.get("retention_days") or {}).get(tomb.event_type, 0))
    if tomb.created_at > listing.created_at - timedelta(days=days):
        return f"removed at #{listing.sequence} before its retention period ({days} days) had passed"
    if _held(tomb.created_at, [h for h in holds if h.sequence < listing.sequence]):
        return f"removed at #{listing.sequence} while a legal hold covered it"
    return ""


def _retention_days(policy: dict[str, Any], event_type: str) -> int:
    return int(policy.get("by_class", {}).get(event_type.split(".")[0], policy["default_days"]))


def _held(created_at: datetime, hold_events: list[AuditEvent]) -> bool:
    active: dict[Any, tuple[datetime, datetime]] = {}
    for event in hold_events:
        if event.event_type == EventType.LEGAL_HOLD_PLACED:
            active[event.payload.get("hold_id")] = (datetime.fromisoformat(event.payload["starts_at"]),
                                                   datetime.fromisoformat(event.payload["ends_at"]))
        else:
            active.pop(event.payload.get("hold_id"), None)
    return any(start <= created_at <= end for start, end in active.values())


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
    checkpoint_ok: bool | None  # signature verifies with the pinned key (None: none pinned)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_event_verify(event: AuditEvent) -> EventIntegrity:
    problems: list[str] = []
    content_ok = stored_hash(event) == event.hash
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
    pin = signing.pinned_key()
    if checkpoint is not None and pin:
        public_hex = json.loads(checkpoint.statement).get("public_key", "")
        checkpoint_ok = signing.matches_pin(public_hex, pin) and head_verifies(
            checkpoint.statement, checkpoint.signature, public_hex)
        if not checkpoint_ok:
            problems.append(f"checkpoint #{checkpoint.number} does not verify with the pinned key")
    return EventIntegrity(content_ok, previous_sequence, previous_ok, event.sequence + 1 if next_ok is not None else None,
                          next_ok, checkpoint, checkpoint_ok, problems)
