"""The Celery application. Workers start with ``celery -A rag_platform.celery_app worker``."""

from rag_platform.process import start

start()  # the role is named when a worker or beat starts (_start_as): this module loads everywhere

from celery import Celery, Task  # noqa: E402
from celery.signals import beat_init, worker_init, worker_process_init  # noqa: E402


class SignerRefusedTask(RuntimeError):
    """A task other than the signer's own was sent to the signer process."""


class GuardedTask(Task):
    """The base of every task of this app (and Celery's built-ins). In the signer process
    (RAG_AUDIT_SIGNER=1, the only one with the signing key) only the signer's tasks run
    (apps.audit.signer.SIGNER_TASKS): a broker client routing e.g. a parse task to queue
    ``audit`` gets a refusal, and the upload is never parsed next to the key."""

    def __call__(self, *args, **kwargs):
        from apps.audit.signing import is_signer
        from rag_platform.process.runtime import process_role

        # Only a worker takes tasks from the broker; a task run in-process (``apply``, the
        # test suite playing the signer) was not sent by a broker client.
        if is_signer() and process_role() == "celery worker":
            from apps.audit.signer import SIGNER_TASKS

            if self.name not in SIGNER_TASKS:
                raise SignerRefusedTask(f"the audit signer runs only {sorted(SIGNER_TASKS)}, not {self.name!r}")
        return super().__call__(*args, **kwargs)


app = Celery("rag_platform", task_cls=GuardedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _start_as(role: str) -> None:
    """The worker and beat entry points: name the process, then refuse what it must not run
    with (Django is set up by now). Celery logs and ignores exceptions raised by signal
    handlers, so a refusal leaves through SystemExit."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.audit.refusals import refuse_unsafe_start

    start(role)
    try:
        refuse_unsafe_start(role)
    except ImproperlyConfigured as error:
        raise SystemExit(f"{role} refused to start: {error}") from None


@worker_init.connect
def _worker_role(**_kwargs) -> None:
    _start_as("celery worker")


@beat_init.connect
def _beat_role(**_kwargs) -> None:
    _start_as("celery beat")


_consumed_queues: set[str] = set()  # this worker's --queues (empty: all), for warming


@worker_init.connect
def _encoder_turns_start(sender=None, **_kwargs) -> None:
    """Before the pool forks: the file its processes take turns on the model with."""
    from pathlib import Path

    from django.conf import settings

    from apps.ingestion import turns

    if sender is not None:
        _consumed_queues.update((sender.app.amqp.queues.consume_from or {}).keys())
    turns.worker_started(Path(settings.DATA_DIR) / "run")


@worker_process_init.connect
def _warm_pool_process(**_kwargs) -> None:
    """Each pool process loads what its queues need (the parsers for "parse", the model for
    "embed") before its first task; CELERY_WORKER_PROC_ALIVE_TIMEOUT allows for it."""
    from apps.ingestion.warming import warm_pool_process

    every = not _consumed_queues
    warm_pool_process(parsers=every or "parse" in _consumed_queues, model=every or "embed" in _consumed_queues)
