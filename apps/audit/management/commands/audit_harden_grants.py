from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the SQL that takes UPDATE/DELETE/TRUNCATE on the audit tables away from the application role."

    def add_arguments(self, parser):
        parser.add_argument("role", help="the database role the application connects as")

    def handle(self, *args, **options):
        for table in ("audit_auditevent", "audit_auditcheckpoint", "audit_audittombstone"):
            self.stdout.write(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {options['role']};")
        self.stdout.write("-- retention expiry then needs a SECURITY DEFINER wrapper owned by the table owner.")
