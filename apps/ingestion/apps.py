from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "apps.ingestion"
    label = "ingestion"
    verbose_name = "Ingestion"

    def ready(self) -> None:
        from apps.ingestion import checks  # noqa: F401  (registers the system checks)

        refuse_unsandboxed_pandoc_in_servers()
        report_weak_sandbox_in_servers()


def refuse_unsandboxed_pandoc_in_servers() -> None:
    """Web and Celery processes run no system checks of their own: refuse to start here."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.context import process_name
    from apps.ingestion.checks import check_pandoc_sandbox

    if process_name().startswith(("celery", "web")):
        errors = [e for e in check_pandoc_sandbox() if e.is_serious()]
        if errors:
            raise ImproperlyConfigured("; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors))


def report_weak_sandbox_in_servers() -> None:
    """A web or Celery process on a machine without Landlock or seccomp says so in its log at
    start (its sandbox children then refuse to parse unless INGEST_SANDBOX_ALLOW_WEAK)."""
    import logging

    from apps.audit.context import process_name
    from apps.ingestion.checks import check_sandbox_isolation

    if process_name().startswith(("celery", "web")):
        for problem in check_sandbox_isolation():
            logging.getLogger("apps.ingestion").error("%s: %s %s", problem.id, problem.msg, problem.hint)
