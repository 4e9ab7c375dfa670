"""Automatic verification, and what the audit pages show about it.

Beat sends ``audit.verify`` every AUDIT_VERIFY_MINUTES (default 10) to the signer, which
runs apps.audit.verification against its own key, incrementally from the place the last
successful run verified (the whole trail the first time), and stores the result as a
signed ``IntegrityRun`` row, outside the events table. A failing run also raises the alarm
(apps.audit.alarms: log, witness file, syslog). ``integrity_monitor()`` is what the pages
read: the last automatic verification (when, result, range) and the red banner's findings:
every failing run since the last good verification, and any status row whose signature
does not verify with the pinned key.

Residual: an incremental run re-hashes only the events since its start; it counts the
places before (none deleted) and checks the start's hash, tombstones and heads whole, but
an owner who edits an older event with the triggers off is found by the full
``manage.py audit_verify`` (run it on a schedule of your own, e.g. weekly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from apps.audit import signing
from apps.audit.chain import canonical_json
from apps.audit.models import IntegrityRun

_STATEMENT_FIELDS = ("kind", "created_at", "ok", "problems", "from_sequence", "head_sequence", "head_hash",
                     "events_checked")


def _statement(run: IntegrityRun) -> str:
    values = {name: getattr(run, name) for name in _STATEMENT_FIELDS}
    values["created_at"] = run.created_at.isoformat(timespec="microseconds")
    return canonical_json({"format": "rag-audit-status/1", **values})


def record_run(*, kind: str, ok: bool, problems: list[str], from_sequence: int = 0, head_sequence: int = 0,
               head_hash: str = "", events_checked: int = 0) -> IntegrityRun:
    """Store one signed result (signer only: the signature is the row's authority)."""
    run = IntegrityRun(kind=kind, created_at=timezone.now(), ok=ok, problems=[p[:500] for p in problems[:20]],
                       from_sequence=from_sequence, head_sequence=head_sequence, head_hash=head_hash,
                       events_checked=events_checked)
    run.statement = _statement(run)
    run.signature, run.public_key = signing.sign_statement(signing.STATUS_DOMAIN, run.statement)
    run.save()
    return run


def run_signed(run: IntegrityRun, pin: str) -> bool:
    return (signing.matches_pin(run.public_key, pin) and run.statement == _statement(run)
            and signing.verify_statement(signing.STATUS_DOMAIN, run.statement, run.signature, run.public_key))


def scheduled_verification() -> IntegrityRun:
    """The signer's periodic check (task ``audit.verify``)."""
    from apps.audit.alarms import raise_alarm
    from apps.audit.verification import audit_verify_all

    public_hex = signing.local_public_key_hex()
    start = None
    for run in IntegrityRun.objects.filter(kind=IntegrityRun.Kind.VERIFY, ok=True)[:20]:
        if run_signed(run, public_hex):
            start = (run.head_sequence, run.head_hash)
            break
    report = audit_verify_all(public_key_hex=public_hex, after=start)
    run = record_run(kind=IntegrityRun.Kind.VERIFY, ok=report.ok, problems=report.problems,
                     from_sequence=start[0] if start else 0, head_sequence=report.head_sequence,
                     head_hash=report.head_hash, events_checked=report.events_checked)
    if not report.ok:
        raise_alarm(report.problems, kind=IntegrityRun.Kind.VERIFY)
    return run


@dataclass(frozen=True)
class IntegrityMonitor:
    last_verification: IntegrityRun | None
    findings: list[str] = field(default_factory=list)  # non-empty: the red banner
    found_at: object = None

    @property
    def alarm(self) -> bool:
        return bool(self.findings)


def integrity_monitor() -> IntegrityMonitor:
    """For the audit pages: the last automatic verification and the banner's findings."""
    pin = signing.pinned_key()
    runs = list(IntegrityRun.objects.all()[:200])
    last_good = next((r for r in runs if r.kind == IntegrityRun.Kind.VERIFY and r.ok and run_signed(r, pin)), None)
    last_verification = next((r for r in runs if r.kind == IntegrityRun.Kind.VERIFY), None)
    findings: list[str] = []
    found_at = None
    for run in runs:
        if last_good is not None and run.id <= last_good.id:
            break
        if not run_signed(run, pin):
            findings.append(f"an integrity status record (#{run.id}) is not signed by the pinned key (forged)")
        elif not run.ok:
            findings += [p for p in run.problems if p not in findings]
        if not run.ok or not run_signed(run, pin):
            found_at = run.created_at  # newest first: ends at the earliest finding since the last good run
    if last_verification is not None and not run_signed(last_verification, pin):
        last_verification = None
    return IntegrityMonitor(last_verification, findings, found_at)
