from django.apps import AppConfig


class AnsweringConfig(AppConfig):
    name = "apps.answering"
    label = "answering"
    verbose_name = "Answering"

    def ready(self):
        from apps.answering import checks  # noqa: F401  (registers the system checks)
        from apps.answering.erasure import blank_answers_citing, reapply_erasures
        from apps.audit.erasure import erasures_reapplied
        from apps.ingestion.signals import documents_deleted

        documents_deleted.connect(blank_answers_citing, dispatch_uid="answering-blank-erased-answers")
        erasures_reapplied.connect(reapply_erasures, dispatch_uid="answering-reapply-erasures")
