from django.core.management.base import BaseCommand

from apps.audit.retention import audit_expire


class Command(BaseCommand):
    help = "Remove audit events past their retention period (checkpointed, not on legal hold)."

    def handle(self, *args, **options):
        removed = audit_expire()
        self.stdout.write(f"{len(removed)} event(s) removed after retention" + (f": {removed[:20]}" if removed else ""))
