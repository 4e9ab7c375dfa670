"""What the application's database role may do: everything the product needs, nothing to the trail.

Two roles (README "Database roles"): the *owner* runs migrations and owns every table; the
*application role* (``DATABASE_APP_ROLE``, default ``rag_app``) is what web, workers and
beat connect as. It is not a superuser and not the owner, so it cannot ALTER the tables
(no DISABLE TRIGGER), set ``session_replication_role`` or open the triggers' doors. On
the audit tables it gets SELECT only, plus:

* ``audit_append`` (EXECUTE): the only way to add events (migration 0007), canonical
  content only and no control events (0011);
* checkpoints and the signer's integrity results (INSERT): a forged one fails the pinned
  key, and the signer never builds on it (apps.audit.alarms reports it);
* legal holds: SELECT only; ``audit_legal_hold_place`` and ``audit_legal_hold_release``
  change a hold and append its event in one transaction (0011);
* data keys (INSERT, and ``audit_erase``, which destroys keys only with an ``audit.erased``
  event and never under a legal hold: migration 0009).

Tombstones and deletions are the owner's (``audit_expire`` with the owner's credentials).
Applied after every ``migrate`` run by the owner (post_migrate), so tables added later are
covered; ``manage.py audit_harden_grants`` prints the same statements.

The workers' role (``DATABASE_WORKER_ROLE``, default ``rag_worker``) gets the same grants
minus ``WORKER_DENIED``: the sessions (raw keys: any session could be hijacked), the API
tokens and the sign-in throttle's records (security review, "checked and sound").
"""

from __future__ import annotations

from django.conf import settings

AUDIT_READ_ONLY = ("audit_auditevent", "audit_audittombstone", "audit_legalhold")
AUDIT_APPEND_ONLY = ("audit_auditcheckpoint", "audit_datakey", "audit_integrityrun")
WORKER_DENIED = ("django_session", "api_apitoken", "axes_accessattempt", "axes_accessfailurelog", "axes_accesslog")
FUNCTIONS = ("audit_append(text[])", "audit_legal_hold_place(text)", "audit_legal_hold_release(bigint, text)",
             "audit_erase(bigint[], text)")


def grant_statements(role: str) -> list[str]:
    r = _quote(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
        f"REVOKE ALL ON django_migrations FROM {r}",
        f"GRANT SELECT ON django_migrations TO {r}",
    ]
    for table in AUDIT_READ_ONLY + AUDIT_APPEND_ONLY:
        statements += [f"REVOKE ALL ON {table} FROM {r}", f"GRANT SELECT ON {table} TO {r}"]
    for table in AUDIT_APPEND_ONLY:
        statements.append(f"GRANT INSERT ON {table} TO {r}")
    for function in FUNCTIONS:
        statements += [f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC", f"GRANT EXECUTE ON FUNCTION {function} TO {r}"]
    return statements


def worker_statements(role: str) -> list[str]:
    """The application role's grants, then no access to WORKER_DENIED (tables that exist)."""
    return grant_statements(role) + [f"REVOKE ALL ON {table} FROM {_quote(role)}" for table in WORKER_DENIED]


def _quote(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def apply_grants(using: str = "default", **_kwargs) -> bool:
    """post_migrate: when this connection owns the trail and the app role exists, grant.

    Returns whether grants were applied (False: single-role database, or not the owner).
    """
    from django.db import connections

    role = settings.DATABASE_APP_ROLE
    connection = connections[using]
    if connection.vendor != "postgresql" or not role:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'audit_auditevent')"
            " = current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s), current_user = %s", [role, role])
        owner, role_exists, same = cursor.fetchone()
        if not owner or not role_exists or same:
            return False
        for statement in grant_statements(role):
            cursor.execute(statement)
        worker = getattr(settings, "DATABASE_WORKER_ROLE", "")
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [worker])
        if worker and worker != role and cursor.fetchone()[0]:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            present = {row[0] for row in cursor.fetchall()}
            for statement in worker_statements(worker):
                if not statement.startswith("REVOKE ALL ON ") or statement.split()[3] in present \
                        or statement.split()[3] == "FUNCTION":
                    cursor.execute(statement)
    return True
