"""The settings of rag_platform.settings, split by area: the one configuration surface.

Only rag_platform.settings imports these modules, in order, after rag_platform.process.start
(the offline environment, the egress guard); later modules read (and a few extend) settings
of earlier ones. Celery beat's one schedule is conf.beat. Each setting is read from the
environment here, once per process, and app code reads it through django.conf.settings (tests
change it with pytest-django's ``settings`` fixture).

Settings that reach code which does not read Django settings itself:

- The parsers (apps.ingestion.parsing, pure Python) get INGEST_ZIP_MAX_TOTAL_BYTES,
  INGEST_ZIP_MAX_RATIO, INGEST_ZIP_MAX_MEMBERS, INGEST_IMAGE_MAX_PIXELS, PDF_TEXT_ENGINE,
  TESSERACT_CMD, SPACY_SENTENCES and the CHUNK_* (conf.ingestion) as arguments: the process
  that sends a job reads them (apps.ingestion.parse_settings) and the sandboxed child receives
  them with the job, since its environment is cleared. Their defaults are written once, in
  apps.ingestion.parsing (tuning.DEFAULTS, chunking.CHUNK_*), and conf.ingestion takes them
  from there.
- The sandbox's INGEST_SANDBOX_ALLOW_WEAK and INGEST_SANDBOX_DENY are read by the parent into
  the child's plan before it forks (apps.ingestion.sandbox.plan_child).

Not a setting, on purpose:

- ``RAG_AUDIT_SIGNING_KEY``, the audit signing key itself, is read from the environment by
  apps.audit.signing.key_from_environment, in the signer only (its file's path is the setting
  AUDIT_SIGNING_KEY_FILE). A setting would copy the private key into django.conf.settings of
  the signer for its whole life, where any module, ``manage.py diffsettings`` and every dump
  of the settings can read it; read at the one place that loads the key, it stays in the
  environment the stack and the manifests give to the signer process alone.
- What is read before Django is configured (the stack, the vLLM launcher, the egress guard,
  the data directory, the worker's pool size): one list in rag_platform/process/__init__.py.
- Variables that libraries read themselves, which app code only checks or passes on: the
  offline switches (rag_platform.process.offline), ``ALLOW_PANDOC_NO_SANDBOX`` (refused,
  apps.ingestion.parsing.offline), ``NUMBA_CACHE_DIR`` (kept readable for the parse child)
  and the ``*_FILE`` secret paths whose folders the child may not read
  (apps.ingestion.confinement).
"""
