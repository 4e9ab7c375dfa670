from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "apps.ingestion"
    label = "ingestion"
    verbose_name = "Ingestion"

    def ready(self) -> None:
        from apps.ingestion import checks  # noqa: F401  (registers the system checks)

        refuse_unsandboxed_pandoc_in_servers()


def refuse_unsandboxed_pandoc_in_servers() -> None:
    """Web and Celery processes run no system checks of their own: refuse to start here."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.context import process_name
    from apps.ingestion.checks import check_pandoc_sandbox

    if process_name().startswith(("celery", "web")):
        errors = [e for e in check_pandoc_sandbox() if e.is_serious()]
        if errors:
            raise ImproperlyConfigured("; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors))
