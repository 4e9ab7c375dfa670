"""The bottom layer of rag_platform: what every process applies before anything else.

The offline switches (``offline``), the egress guard (``egress``, ``egress_policy``,
``egress_refusals``), the process role and data directory (``runtime``), the client's
address behind proxies, the model folder's manifest and checksums, the vLLM server process.
It imports no app, so apps may import it; the wiring on top (settings, URLs, entry points,
Celery, the stack) they may not (import-linter, pyproject.toml).

Environment variables read before Django is configured, so not settings (everything else is
a setting, rag_platform/conf/__init__.py):

- this layer: ``RAG_DATA_DIR`` (runtime.data_dir), ``RAG_WORKERS`` (runtime.pool_processes: the
  stack's worker pool size, default 2), the endpoints ``DATABASE_URL``, ``CELERY_BROKER_URL``,
  ``LLM_BASE_URL`` and their ``*_FILE`` forms (runtime.endpoint, which the settings use too),
  ``RAG_EGRESS_ALLOW`` (egress_policy), and the vLLM server's ``RAG_VLLM_KVCACHE_GIB``,
  ``RAG_VLLM_ENFORCE_EAGER`` and ``RAG_LLM_DTYPE`` (vllm_server);
- the stack that starts the processes (rag_platform.stack, stack_keys, embedded, supervise,
  backup): ``RAG_MODEL_DIR``, ``LLM_MODEL_SHA256``, ``RAG_WEB_PORT``, ``RAG_LLM_PORT``,
  ``RAG_AUDIT_SIGNING_KEY(_FILE)``, ``RAG_AUDIT_PIN``, ``RAG_AUDIT_MASTER_KEY_FILE``,
  ``RAG_AUDIT_WITNESS_FILE`` (to make the keys before the first start and hand them to the
  right process), ``RAG_PG_SHARED_BUFFERS_MB``, ``RAG_RESTART_LIMIT``, ``RAG_RESTART_WINDOW``
  and ``PG_BIN_DIR``.
"""


def start(role: str = "") -> None:
    """The first call of every entry point (manage.py, WSGI, ASGI, the Celery app, the settings,
    the stack, backup), before Django or any library that could phone home is imported.

    Forces the offline switches, installs the egress guard, names the process (``role``; ""
    keeps the current one: the Celery app names its worker and beat when they start) and points
    Django at rag_platform.settings unless DJANGO_SETTINGS_MODULE says otherwise. Idempotent.
    The refusals that need Django (public endpoints, the master key, the signer's key) run once
    it is set up, for the role named here: apps.audit.refusals.refuse_unsafe_start.
    """
    import os

    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    from rag_platform.process.egress import install_egress_guard
    from rag_platform.process.runtime import set_process_role

    install_egress_guard()
    if role:
        set_process_role(role)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
