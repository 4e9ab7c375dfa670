"""Verify the audit trail: hash chain, tombstones, signed checkpoints (database and files).

    manage.py audit_verify                          # the live trail; exit 1 and name the first bad event
    manage.py audit_verify --export FILE.zip --public-key KEY   # an export, offline (no database)
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Recompute the audit chain and checkpoints, or check an export offline; names the first bad event."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--export", help="verify this export zip instead of the database (offline)")
        parser.add_argument("--public-key", help="trusted Ed25519 public key: hex, or a file holding it "
                            "(default: this installation's key)")
        parser.add_argument("--checkpoint-dir", help="exported checkpoints to compare (default AUDIT_CHECKPOINT_DIR)")
        parser.add_argument("--no-record", action="store_true", help="do not write an audit.verified event")

    def handle(self, *args, **options):
        key = options["public_key"]
        if key and Path(key).is_file():
            key = Path(key).read_text().strip()
        if options["export"]:
            from apps.audit.exports import verify_export

            problems = verify_export(Path(options["export"]).read_bytes(), trusted_public_key=key)
            if problems:
                raise CommandError("export does NOT verify:\n  " + "\n  ".join(problems))
            self.stdout.write(self.style.SUCCESS("export verifies: signature, file hashes and every event hash"))
            return
        from apps.audit.models import EventType, Outcome
        from apps.audit.services import audit_record
        from apps.audit.verification import audit_verify_all

        directory = Path(options["checkpoint_dir"]) if options["checkpoint_dir"] else None
        report = audit_verify_all(directory=directory, public_key_hex=key)
        if not options["no_record"]:
            audit_record(event_type=EventType.AUDIT_VERIFIED, outcome=Outcome.SUCCESS if report.ok else Outcome.FAILED,
                         payload={"events_checked": report.events_checked, "checkpoints_checked": report.checkpoints_checked,
                                  "first_bad_sequence": report.first_bad_sequence, "problems": report.problems[:20]})
        if not report.ok:
            raise CommandError(f"audit trail does NOT verify; first bad event: #{report.first_bad_sequence}\n  "
                               + "\n  ".join(report.problems))
        self.stdout.write(self.style.SUCCESS(
            f"audit trail verifies: {report.events_checked} events through #{report.head_sequence}, "
            f"{report.checkpoints_checked} signed checkpoints"))
