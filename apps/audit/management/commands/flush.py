"""Django's ``flush``, which leaves the audit trail alone unless explicitly told otherwise.

The database trigger rejects TRUNCATE of the audit tables unless the session setting
``rag.audit_flush`` is on. This command sets it only (a) while Django's test environment
is active on a test database (transactional tests flush between tests), or (b) when the
operator passes ``--include-audit-trail`` (wiping a development database on purpose).
Otherwise a flush of a real database fails instead of silently erasing the trail.
"""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections


def _in_test_run(connection) -> bool:
    from django.test.utils import _TestState

    return hasattr(_TestState, "saved_data") and str(connection.settings_dict["NAME"]).startswith("test_")


class Command(FlushCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--include-audit-trail", action="store_true",
            help="also erase the audit trail, its checkpoints and tombstones (development only)",
        )

    def handle(self, **options):
        connection = connections[options["database"]]
        allow = options.get("include_audit_trail") or _in_test_run(connection)
        if not allow:
            return super().handle(**options)
        with connection.cursor() as cursor:
            cursor.execute("SET rag.audit_flush = 'on'")
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET rag.audit_flush")
