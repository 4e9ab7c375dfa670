from django.conf import settings
from django.core.management.base import BaseCommand

from apps.audit.grants import grant_statements


class Command(BaseCommand):
    help = ("Print the SQL that gives the application role what it needs and nothing on the audit trail "
            "(run by migrate automatically when the owner migrates and the role exists).")

    def add_arguments(self, parser):
        parser.add_argument("role", nargs="?", default=settings.DATABASE_APP_ROLE,
                            help="the database role web, workers and beat connect as")

    def handle(self, *args, **options):
        for statement in grant_statements(options["role"]):
            self.stdout.write(statement + ";")
