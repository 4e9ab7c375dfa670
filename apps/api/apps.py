from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "apps.api"
    label = "api"
    verbose_name = "REST API and its tokens"

    def ready(self) -> None:
        from apps.api import signals  # noqa: F401  (tokens end with password, role, account)
