"""Verify the audit trail: hash chain, tombstones, signed heads (database, files, witness).

    manage.py audit_verify --public-key KEY              # the live trail; exit 1 and name the first bad event
    manage.py audit_verify --export FILE.zip --public-key KEY   # an export, offline (no database)

KEY is the pinned public key (hex), its fingerprint (``sha256:…``) or a file holding
either; default RAG_AUDIT_PIN. Nothing found in the database or the export is
trusted by itself.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Recompute the audit chain and signed heads, or check an export offline; names the first bad event."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--export", help="verify this export zip instead of the database (offline)")
        parser.add_argument("--public-key", help="pinned Ed25519 public key: hex, sha256:<fingerprint>, or a file "
                            "holding either (default RAG_AUDIT_PIN)")
        parser.add_argument("--checkpoint-dir", help="exported checkpoints to compare (default AUDIT_CHECKPOINT_DIR)")
        parser.add_argument("--witness", help="witness file to compare (default AUDIT_WITNESS_FILE)")
        parser.add_argument("--no-record", action="store_true", help="do not write an audit.verified event")
        parser.add_argument("--from-last-head", action="store_true",
                            help="continue from the newest signed head instead of re-hashing the whole trail")

    def handle(self, *args, **options):
        from apps.audit.verification import NoPinnedKey, resolve_pin

        key = options["public_key"]
        if key and Path(key).is_file():
            key = Path(key).read_text().strip()
        try:
            pin = resolve_pin(key)
        except NoPinnedKey as error:
            raise CommandError(str(error)) from None
        if options["export"]:
            from apps.audit.exports import verify_export

            problems = verify_export(Path(options["export"]).read_bytes(), trusted_public_key=pin)
            if problems:
                raise CommandError("export does NOT verify:\n  " + "\n  ".join(problems))
            self.stdout.write(self.style.SUCCESS("export verifies: signature by the pinned key, file hashes and every event hash"))
            return
        from apps.audit.models import EventType, Outcome
        from apps.audit.services import audit_record
        from apps.audit.verification import audit_verify_all

        report = audit_verify_all(directory=Path(options["checkpoint_dir"]) if options["checkpoint_dir"] else None,
                                  witness=Path(options["witness"]) if options["witness"] else None, public_key_hex=pin,
                                  from_last_head=options["from_last_head"])
        if not options["no_record"]:
            audit_record(event_type=EventType.AUDIT_VERIFIED, outcome=Outcome.SUCCESS if report.ok else Outcome.FAILED,
                         payload={"events_checked": report.events_checked, "checkpoints_checked": report.checkpoints_checked,
                                  "head_sequence": report.head_sequence, "head_hash": report.head_hash,
                                  "witnessed_sequence": report.witnessed_sequence, "witnessed_at": report.witnessed_at,
                                  "first_bad_sequence": report.first_bad_sequence, "problems": report.problems[:20]})
        if not report.ok:
            raise CommandError(f"audit trail does NOT verify; first bad event: #{report.first_bad_sequence}\n  "
                               + "\n  ".join(report.problems))
        witnessed = (f"; last witnessed head: #{report.witnessed_sequence} at {report.witnessed_at}"
                     if report.witnessed_at else "; no signed head witnessed yet")
        self.stdout.write(self.style.SUCCESS(
            f"audit trail verifies: {report.events_checked} events through #{report.head_sequence}, "
            f"{report.checkpoints_checked} signed heads{witnessed}"))
