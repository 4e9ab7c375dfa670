from django.core.management.base import BaseCommand, CommandError

from apps.audit.retention import audit_expire


class Command(BaseCommand):
    help = "Remove audit events past their retention period (checkpointed, not on legal hold)."

    def handle(self, *args, **options):
        from django.db import DatabaseError

        try:
            removed = audit_expire()
        except DatabaseError as error:
            if "permission denied" not in str(error):
                raise
            raise CommandError("audit_expire is the owner's: run it with RAG_DATABASE_OWNER_URL set to the owner "
                               f"role's URL (README \"Database roles\"); the database said: {error}") from None
        self.stdout.write(f"{len(removed)} event(s) removed after retention" + (f": {removed[:20]}" if removed else ""))
