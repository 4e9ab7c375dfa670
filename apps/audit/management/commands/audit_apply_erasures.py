"""Re-apply the erasure ledger: run after restoring a backup (the stack runs it at start)."""

from django.core.management.base import BaseCommand, CommandError

from apps.audit.erasure import apply_ledger
from apps.audit.keys import ledger_path


class Command(BaseCommand):
    help = ("Destroy again the data keys the erasure ledger lists (a backup taken before an erasure brings them "
            "back) and delete again the history rows and documents those erasures removed, and add to the ledger erasures it is missing. Run it after every restore, before serving.")

    def handle(self, *args, **options):
        try:
            result = apply_ledger()
        except Exception as error:  # a legal hold placed on restored content, a database error
            raise CommandError(f"erasures not re-applied: {error}") from error
        for problem in result["skipped"]:
            self.stderr.write(f"WARNING: {problem}")
        self.stdout.write(
            f"erasure ledger {ledger_path()}: {result['keys_destroyed_again']} restored key(s) destroyed again, "
            f"{result.get('history_rows_deleted', 0)} history row(s) and {result.get('documents_deleted', 0)} "
            f"document(s) deleted again, {result['ledger_entries_added']} erasure(s) added to the ledger, "
            f"{len(result['skipped'])} unauthenticated line(s) skipped")
