import json

from django.core.management.base import BaseCommand, CommandError

from apps.audit.attestation import attestation_passed, attestation_report
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record


class Command(BaseCommand):
    help = "Print the egress attestation report (endpoints, checksums, switches, self-test, blocked attempts, chain)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--verify", action="store_true",
                            help="run audit_verify first (pinned key); otherwise the last verification is reported")

    def handle(self, *args, **options):
        report = attestation_report(verify_chain=options["verify"])
        passed = attestation_passed(report)
        audit_record(event_type=EventType.ATTESTATION_VIEWED, outcome=Outcome.SUCCESS,
                     payload={"passed": passed, "via": "manage.py attest", "blocked_recorded": report["blocked_recorded"]})
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            w = self.stdout.write
            w(f"Egress attestation, {report['generated_at']}, host {report['host']}: {'PASSED' if passed else 'FAILED'}")
            w("Endpoints:")
            for e in report["endpoints"]:
                w(f"  {e['variable']:<18} {e['locality']:<12} {e['url']}")
            w(f"Allowlist: {', '.join(report['allowlist']) or 'empty'}")
            w(f"LLM {report['model']['name']} sha256 {report['model']['sha256']} ({report['model']['sha256_source'] or 'source unknown'})")
            w(f"Embeddings {report['embedding']['path']} sha256 {report['embedding']['sha256']}")
            w("Offline switches: " + ", ".join(f"{k}={'on' if v else 'OFF'}" for k, v in report["offline_switches"].items()))
            t = report["self_test"]
            w(f"Egress guard installed: {report['guard_installed']}; self-test to {t['destination']} (forbidden loopback): "
              f"{'refused before connecting, nothing arrived' if t['passed'] else 'FAILED'}")
            w(f"Blocked outbound attempts recorded in the audit trail: {report['blocked_recorded']}")
            r = report["database_role"]
            w(f"Database role of this process: {r['name']} ("
              + ("not a superuser, not the owner of the trail" if r["separate"] else
                 "SUPERUSER or OWNER of the trail: the append-only promise does not hold against it") + ")")
            c = report["chain"]
            if not c["verified"]:
                w("Audit chain: not verified yet (manage.py audit_verify, or attest --verify)")
            else:
                w(f"Audit chain, last verified {c['verified_at']}: "
                  f"{'verifies' if c['ok'] else 'DOES NOT VERIFY at #' + str(c['first_bad_sequence'])}, "
                  f"{c['events_checked']} events, {c['checkpoints_checked']} signed heads; "
                  f"last witnessed head #{c.get('witnessed_sequence') or 0} {c.get('witnessed_at') or ''}")
            for line in report["limits"]:
                w(f"Note: {line}")
        if not passed:
            raise CommandError("attestation FAILED")
