"""The signer's tasks (queue ``audit``): only the signer process consumes them and holds the key.

Beat sends ``audit.checkpoint`` every AUDIT_CHECKPOINT_MINUTES; web asks ``audit.sign``
for an export manifest and waits for the answer (CELERY_RESULT_BACKEND).
"""

from celery import shared_task

from apps.audit import signing
from apps.audit.checkpoints import audit_checkpoint_create

SIGN_TIMEOUT_SECONDS = 30


@shared_task(name="audit.checkpoint", ignore_result=True)
def audit_checkpoint() -> int | None:
    checkpoint = audit_checkpoint_create()
    return checkpoint.number if checkpoint else None


@shared_task(name="audit.sign", ignore_result=False)
def audit_sign(message: str) -> tuple[str, str]:
    return signing.sign(message.encode())


def sign_by_signer(message: str) -> tuple[str, str]:
    """(signature hex, public key hex) from the signer: in this process if it is the signer,
    else over the broker. Raises SigningKeyUnavailable if no signer answers in time."""
    if signing.is_signer():
        return signing.sign(message.encode())
    from rag_platform.celery_app import app  # the configured app (broker, result backend), in any process

    try:
        result = app.send_task("audit.sign", args=[message], queue="audit")
        signature, public_hex = result.get(timeout=SIGN_TIMEOUT_SECONDS)
    except Exception as error:  # timeout, broker down, signer without key
        raise signing.SigningKeyUnavailable(f"the audit signer did not sign: {error}") from error
    return signature, public_hex
