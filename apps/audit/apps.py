from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        """The egress guard's refusals go to the trail; the roles' grants follow each migrate.
        What a server refuses to start with: apps.audit.refusals."""
        from django.db.models.signals import post_migrate

        from apps.audit import checks  # noqa: F401  (registers the system checks)
        from apps.audit.egress_record import record_blocked_attempt
        from apps.audit.grants import apply_grants
        from rag_platform.process import egress_refusals

        egress_refusals.set_recorder(record_blocked_attempt)
        post_migrate.connect(apply_grants, sender=self, dispatch_uid="audit-app-role-grants")
