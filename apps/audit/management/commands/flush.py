"""Django's ``flush``, which leaves the audit trail alone unless explicitly told otherwise.

Emptying the audit tables is an owner-only operation: the application role has no
TRUNCATE on them, and the trigger's ``rag.audit_flush`` door opens only for the table
owner (migration 0007). This command opens it (a) while Django's test environment is
active on a test database (transactional tests flush between tests) or (b) when the
operator passes ``--include-audit-trail``. In case (a), when the test connection is the
application role, the flush runs on the owner's credentials (the ``owner`` database
alias) and the connection switches back afterwards. Otherwise a flush fails instead of
silently erasing the trail.
"""

from django.conf import settings
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
            help="also erase the audit trail, its checkpoints and tombstones (development only; owner's credentials)",
        )

    def handle(self, **options):
        connection = connections[options["database"]]
        in_test = _in_test_run(connection)
        default = connections["default"].settings_dict
        if in_test and options["database"] != "default" and connection.settings_dict["NAME"] == default["NAME"] \
                and connection.settings_dict.get("HOST") == default.get("HOST"):
            return  # the owner alias is the same test database, flushed once through "default"
        allow = options.get("include_audit_trail") or in_test
        if not allow:
            return super().handle(**options)
        owner = settings.DATABASES.get("owner") if in_test else None
        saved = {k: connection.settings_dict.get(k) for k in ("USER", "PASSWORD")}
        if owner and owner.get("USER") != saved["USER"]:
            connection.close()
            connection.settings_dict.update(USER=owner.get("USER"), PASSWORD=owner.get("PASSWORD"))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET rag.audit_flush = 'on'")
            try:
                return super().handle(**options)
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET rag.audit_flush")
        finally:
            if connection.settings_dict.get("USER") != saved["USER"]:
                connection.close()
                connection.settings_dict.update(saved)
