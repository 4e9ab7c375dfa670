"""One settings module, driven by the environment.

Embedded default: nothing to configure; endpoints come from the embedded stack started by
``python3 bootstrap.py run``. Production: set DATABASE_URL, CELERY_BROKER_URL and
LLM_BASE_URL (and DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE, DJANGO_ALLOWED_HOSTS);
the same code then uses those services and starts none of its own.

The settings live in rag_platform.conf, one module per area, imported here in order: later
modules read (and a few extend) settings of earlier ones.
"""

from __future__ import annotations

from rag_platform.process import start

start()  # offline switches and the egress guard, whoever imports the settings first

from rag_platform.conf.env import *  # noqa: E402  env_bool, env_int, env_float, env_list
from rag_platform.conf.core import *  # noqa: E402  directories, secret key, hosts, apps, static
from rag_platform.conf.services import *  # noqa: E402  database, Celery
from rag_platform.conf.answering import *  # noqa: E402  models, retrieval, answering
from rag_platform.conf.audit import *  # noqa: E402  audit trail
from rag_platform.conf.ingestion import *  # noqa: E402  uploads, chunking, parse sandbox
from rag_platform.conf.security import *  # noqa: E402  passwords, sign-in, sessions, CSP, HTTPS
from rag_platform.conf.sso import *  # noqa: E402  OpenID Connect (adds to AUTHENTICATION_BACKENDS)
from rag_platform.conf.beat import *  # noqa: E402  CELERY_BEAT_SCHEDULE, every periodic task
from rag_platform.conf.logs import *  # noqa: E402  LOGGING
