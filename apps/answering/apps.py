from django.apps import AppConfig


class AnsweringConfig(AppConfig):
    name = "apps.answering"
    label = "answering"
    verbose_name = "Answering"

    def ready(self):
        from apps.answering import checks  # noqa: F401  (registers the system checks)
