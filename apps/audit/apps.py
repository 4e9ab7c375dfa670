from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from rag_platform.process import egress_refusals

        from django.db.models.signals import post_migrate

        from apps.audit import checks  # noqa: F401  (registers the system checks)
        from apps.audit.grants import apply_grants
        from apps.audit.egress_record import record_blocked_attempt

        egress_refusals.set_recorder(record_blocked_attempt)
        post_migrate.connect(apply_grants, sender=self, dispatch_uid="audit-app-role-grants")
        _refuse_public_endpoints_in_servers()
        _signer_needs_its_key()


def _refuse_public_endpoints_in_servers() -> None:
    """Web and Celery processes run no system checks of their own: refuse to start here.
    The role is the one the entry point set (rag_platform.process.runtime); the Celery worker and
    beat set theirs when they start, and call refuse_public_endpoints() then."""
    from rag_platform.process.runtime import SERVER_ROLES, WEB_ROLES, process_role

    if process_role() in SERVER_ROLES:
        refuse_public_endpoints()
    if process_role() in WEB_ROLES:
        refuse_without_master_key()


def refuse_without_master_key() -> None:
    """The web server seals questions and reads audit content: no usable master key, no
    start (workers only need it to delete documents, and say so then)."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.keys import master_key_problem

    if problem := master_key_problem():
        raise ImproperlyConfigured(problem)


def refuse_public_endpoints() -> None:
    """Raise ImproperlyConfigured if a configured endpoint is on a public address."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.checks import check_endpoints_are_local

    errors = [e for e in check_endpoints_are_local() if e.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors))


def _signer_needs_its_key() -> None:
    """A Celery process started as the signer stops at once, with the reason, if its key is
    missing (it never makes one up); other processes never load it."""
    from django.core.exceptions import ImproperlyConfigured

    import sys

    from apps.audit import signing

    if signing.is_signer() and "worker" in sys.argv and any("celery" in a for a in sys.argv[:3]):
        try:
            signing.load_private_key()
        except (signing.SigningKeyUnavailable, ValueError) as error:
            raise ImproperlyConfigured(f"audit signer: {error}") from None
