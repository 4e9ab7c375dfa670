from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "apps.corpus"
    label = "corpus"
    verbose_name = "Collections and documents"

    def ready(self) -> None:
        # The audit views keep passages of collections a reviewer may not read masked; the
        # rule of who reads what is this app's, handed down (apps.audit.access).
        from apps.audit.access import register_readable_collections
        from apps.corpus.selectors import collections_readable_by

        register_readable_collections(lambda user: collections_readable_by(user).values_list("id", flat=True))
