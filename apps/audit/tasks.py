"""The signer's tasks (queue ``audit``): only the signer process consumes them and holds the key.

Beat sends ``audit.checkpoint`` every AUDIT_CHECKPOINT_MINUTES and ``audit.verify`` every
AUDIT_VERIFY_MINUTES; web asks ``audit.sign_export`` for an export and waits for the answer
(CELERY_RESULT_BACKEND). None of them signs text from the caller: a head is built from the
signer's own chain read (apps.audit.checkpoints), an export statement from the events the
signer re-reads itself (apps.audit.export_signing). The signer process runs these names only
(apps.audit.signer.SIGNER_TASKS, enforced by the task class in rag_platform.celery_app).
"""

from typing import Any

from celery import shared_task

from apps.audit.checkpoints import audit_checkpoint_create


@shared_task(name="audit.checkpoint", ignore_result=True)
def audit_checkpoint() -> int | None:
    checkpoint = audit_checkpoint_create()
    return checkpoint.number if checkpoint else None


@shared_task(name="audit.verify", ignore_result=True)
def audit_verify_scheduled() -> bool:
    from apps.audit.monitoring import scheduled_verification

    return scheduled_verification().ok


@shared_task(name="audit.sign_export", ignore_result=False)
def audit_sign_export(request: dict[str, Any], ranges: list[list[int]]) -> tuple[str, str, str]:
    from apps.audit.export_signing import sign_export

    return sign_export(request, ranges)

