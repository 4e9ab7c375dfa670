"""One settings module, driven by the environment.

Embedded default: nothing to configure; endpoints come from the embedded stack started by
``python3 bootstrap.py run``. Production: set DATABASE_URL, CELERY_BROKER_URL and
LLM_BASE_URL (and DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE, DJANGO_ALLOWED_HOSTS);
the same code then uses those services and starts none of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag_platform.privacy import apply_offline_environment

apply_offline_environment()
from rag_platform.egress import install_egress_guard  # noqa: E402

install_egress_guard()

import dj_database_url  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from rag_platform.runtime import (  # noqa: E402
    PROJECT_DIR,
    data_dir,
    endpoint,
    local_secret_key,
    secret_from_env_or_file,
)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


BASE_DIR = PROJECT_DIR
DATA_DIR = data_dir()
# numba (used by unstructured's PDF path) would otherwise write its cache into site-packages.
os.environ.setdefault("NUMBA_CACHE_DIR", str(DATA_DIR / "cache" / "numba"))

# RAG_SECRET_KEY_EPHEMERAL=1: a process that signs nothing that outlives it (the parse
# workers, which handle untrusted files) gets a random key per start instead of the real one.
if env_bool("RAG_SECRET_KEY_EPHEMERAL", False):
    import secrets as _secrets

    SECRET_KEY = _secrets.token_urlsafe(50)
else:
    SECRET_KEY = secret_from_env_or_file("DJANGO_SECRET_KEY") or local_secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "rag_platform.apps.PlatformConfig",  # loads the Celery app in every process
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "apps.audit",
    "apps.accounts",
    "apps.corpus",
    "apps.ingestion",
    "apps.retrieval",
    "apps.answering",
    "apps.api",
    "ninja",  # serves the API docs page's assets locally (no CDN)
    "axes",
]

MIDDLEWARE = [
    "rag_platform.request_limits.RequestSizeLimitMiddleware",  # first: before anything reads a body
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.accounts.middleware.AbsoluteSessionTimeoutMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.ThrottledSignInBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "rag_platform.urls"
WSGI_APPLICATION = "rag_platform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL of the running stack ----------
_database_url = endpoint("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    # No stack running and nothing configured: keep Django importable (collectstatic,
    # check); any query fails with a message that says what to do.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "HOST": str(DATA_DIR / "run" / "no-database-configured"),
        }
    }
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 10)
# Two roles (README "Database roles"): DATABASE_URL is the application role for web,
# workers and beat; migrations run with the owner's URL as DATABASE_URL. The owner's
# credentials, for owner-only commands (audit_expire), come from the environment only,
# never from the stack file that every process reads.
DATABASE_APP_ROLE = os.environ.get("RAG_DATABASE_APP_ROLE", "rag_app")
_owner_url = secret_from_env_or_file("RAG_DATABASE_OWNER_URL")
if _owner_url:
    DATABASES["owner"] = dj_database_url.parse(_owner_url, conn_max_age=0)
    DATABASES["owner"].setdefault("OPTIONS", {})["connect_timeout"] = 10
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "answering:ask"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = DATA_DIR / "documents"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Celery: CELERY_BROKER_URL, else the embedded Redis of the running stack -----------
CELERY_BROKER_URL = endpoint("CELERY_BROKER_URL") or "redis+socket://" + str(
    DATA_DIR / "run" / "no-broker-configured.sock"
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Results only for the signer's on-demand tasks (an export manifest to sign, a head now).
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "rpc://")
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process loads the parsers and the embedding model before it reports for work
# (apps.ingestion.warming.warm_pool_process); the first start also exports the ONNX graph.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 600.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("INGEST_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("INGEST_TIME_LIMIT", 660)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False

# --- Models ----------------------------------------------------------------------------
LLM_BASE_URL = endpoint("LLM_BASE_URL") or "http://127.0.0.1:8001/v1"
LLM_MODEL = os.environ.get("LLM_MODEL") or endpoint("LLM_MODEL") or "smollm2-135m-instruct"
LLM_MODEL_SHA256 = os.environ.get("LLM_MODEL_SHA256") or endpoint("LLM_MODEL_SHA256") or ""
# How LLM_MODEL_SHA256 is known: the embedded stack re-hashes the served files at start and
# says "verified at start"; a remote model's checksum is the operator's word.
LLM_MODEL_SHA256_SOURCE = (os.environ.get("LLM_MODEL_SHA256_SOURCE") or endpoint("LLM_MODEL_SHA256_SOURCE")
                           or ("operator-supplied" if LLM_MODEL_SHA256 else ""))
LLM_API_KEY = secret_from_env_or_file("LLM_API_KEY") or "not-needed-on-premises"
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 120.0)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 160)
# vLLM sampling extension; stops small models from looping on a sentence.
LLM_REPETITION_PENALTY = env_float("LLM_REPETITION_PENALTY", 1.1)
# Where the embedded stack keeps the converted model.
LLM_MODEL_DIR = DATA_DIR / "models"

EMBEDDING_MODEL_PATH = os.environ.get("EMBEDDING_MODEL_PATH") or ""  # "" = packaged MiniLM
EMBEDDING_DIMENSIONS = 384
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32)

# --- Ingestion and retrieval -----------------------------------------------------------
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Request bodies (rag_platform.request_limits): upload routes take UPLOAD_REQUEST_MAX_BYTES
# (a multi-file form or a zip; each file at most UPLOAD_MAX_BYTES), every other route
# REQUEST_MAX_BYTES, and nothing past REQUEST_MAX_BYTES is read before sign-in.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024)
UPLOAD_REQUEST_MAX_BYTES = env_int("UPLOAD_REQUEST_MAX_BYTES", 4 * UPLOAD_MAX_BYTES)
FILE_UPLOAD_HANDLERS = [
    "rag_platform.request_limits.UploadSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
CHUNK_MAX_CHARACTERS = env_int("CHUNK_MAX_CHARACTERS", 1200)
CHUNK_NEW_AFTER_CHARACTERS = env_int("CHUNK_NEW_AFTER_CHARACTERS", 900)
CHUNK_OVERLAP_CHARACTERS = env_int("CHUNK_OVERLAP_CHARACTERS", 400)  # tuned on SciFact dev (docs/benchmarks.md)
# Personal-data detection (apps.privacy) on every parsed chunk and every question. Off (0)
# skips it for collections whose policy is "index"; "mask" and "refuse" collections are
# always screened (apps.ingestion.personal_data).
PII_DETECTION = env_bool("RAG_PII_DETECTION", True)
RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 4)
# Cosine distance above which a passage is not considered relevant at all.
RETRIEVAL_MAX_DISTANCE = env_float("RETRIEVAL_MAX_DISTANCE", 0.75)
# Evidence, answerability and grounding (apps/answering: evidence, answerability,
# grounding); defaults chosen on the policy-qa dev set (docs/benchmarks.md).
ANSWER_EVIDENCE_SOURCES = env_int("ANSWER_EVIDENCE_SOURCES", 4)
ANSWER_KEYWORD_WEIGHT = env_float("ANSWER_KEYWORD_WEIGHT", 0.8)
ANSWER_FIGURE_WEIGHT = env_float("ANSWER_FIGURE_WEIGHT", 0.1)
ANSWER_MIN_EVIDENCE_SCORE = env_float("ANSWER_MIN_EVIDENCE_SCORE", 0.65)
# wordfreq Zipf frequencies below which a question's noun/adjective (resp. any other word)
# is specific: the passages must mention it (apps/answering/answerability.py).
ANSWER_SPECIFIC_ZIPF = env_float("ANSWER_SPECIFIC_ZIPF", 4.1)
ANSWER_RARE_ZIPF = env_float("ANSWER_RARE_ZIPF", 3.3)
ANSWER_MIN_OVERLAP = env_float("ANSWER_MIN_OVERLAP", 0.7)  # share of a sentence's words its passage holds
ANSWER_QUOTE_MAX_CHARACTERS = env_int("ANSWER_QUOTE_MAX_CHARACTERS", 400)
# "small" (one short answer from the best evidence sentences) or "capable" (whole passages,
# several cited sentences); "" = from the model's name (apps/answering/profiles.py).
LLM_PROMPT_PROFILE = os.environ.get("LLM_PROMPT_PROFILE", "")

# --- Retrieval and answering (issue 4) ---
# Hybrid search: nearest chunks (HNSW) and full-text matches (GIN), fused by weighted RRF.
RETRIEVAL_CANDIDATES = env_int("RETRIEVAL_CANDIDATES", 40)  # per list, before fusion
# hnsw.ef_search (>= candidates). bench/search.py at 100,000 chunks, 10% permission filter:
# recall@10 against exact search 0.90 at 300, 0.95 at 600, 0.98 at 800, 0.99 at 1000, for
# a few ms more per search (the walk otherwise stays in a cluster of near-duplicates).
RETRIEVAL_EF_SEARCH = env_int("RETRIEVAL_EF_SEARCH", 1000)
# When the permission filter (and the picked collections/documents) keep at most this many
# chunks, the vector half computes exact distances over them instead of walking the HNSW
# graph: recall 1.0 and k results however selective the filter. Beyond it the walk is
# faster: exact costs ~5 us per chunk here (vectors are TOASTed), 51 ms for 10,000 chunks
# vs 11 ms through the index; the two cross at 3,000-5,000 chunks (bench, 100,000 chunks).
RETRIEVAL_EXACT_MAX_CHUNKS = env_int("RETRIEVAL_EXACT_MAX_CHUNKS", 3000)
# Tuned on SciFact dev (bench/search_tune.py): ts_rank has no IDF, so the keyword list is
# weaker than BM25 and gets a lower weight; RRF k=20 trusts the top ranks more than k=60.
RETRIEVAL_RRF_K = env_int("RETRIEVAL_RRF_K", 20)
RETRIEVAL_VECTOR_WEIGHT = env_float("RETRIEVAL_VECTOR_WEIGHT", 1.0)
RETRIEVAL_KEYWORD_WEIGHT = env_float("RETRIEVAL_KEYWORD_WEIGHT", 0.3)
RETRIEVAL_TS_RANK_NORMALIZATION = env_int("RETRIEVAL_TS_RANK_NORMALIZATION", 1)
# Words in more than this fraction of chunks are left out of the keyword query.
RETRIEVAL_KEYWORD_MAX_TERM_FREQUENCY = env_float("RETRIEVAL_KEYWORD_MAX_TERM_FREQUENCY", 0.02)
# ... once the table holds this many chunks (below it, every word counts).
RETRIEVAL_KEYWORD_STATS_MIN_CHUNKS = env_int("RETRIEVAL_KEYWORD_STATS_MIN_CHUNKS", 2000)
# The served model's context window (vLLM --max-model-len) and its tokenizer.json
# ("" = the converted model's folder); prompts are fitted to it by token count.
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 2048)
LLM_TOKENIZER_PATH = os.environ.get("LLM_TOKENIZER_PATH") or ""
LLM_CONNECT_TIMEOUT_SECONDS = env_float("LLM_CONNECT_TIMEOUT_SECONDS", 5.0)
LLM_RETRIES = env_int("LLM_RETRIES", 1)  # before the first token only
# Follow-ups: how many earlier turns of a conversation feed the standalone rewrite.
ANSWER_FOLLOW_UP_TURNS = env_int("ANSWER_FOLLOW_UP_TURNS", 1)

# --- Audit trail and egress guard (issue 6) ---
# Egress: RAG_EGRESS_ALLOW="10.0.0.0/8,db.internal:5432" (see rag_platform/egress.py).
AUDIT_CHECKPOINT_DIR = os.environ.get("RAG_AUDIT_CHECKPOINT_DIR") or str(DATA_DIR / "audit-checkpoints")
# The signer signs the chain head this often (only when it moved) and on demand.
AUDIT_CHECKPOINT_MINUTES = env_float("RAG_AUDIT_CHECKPOINT_MINUTES", 1.0)
# Only the signer process sets RAG_AUDIT_SIGNER=1 and can read the key (apps.audit.signing).
AUDIT_SIGNER = env_bool("RAG_AUDIT_SIGNER", False)
# The operator's pin: the public key (hex) or "sha256:<fingerprint>", printed by audit_keygen.
AUDIT_PUBLIC_KEY = os.environ.get("RAG_AUDIT_PIN", "")
# Every signed head is appended here, outside the data directory (apps.audit.witness);
# copy it off the machine. Optional: also to the local syslog socket.
AUDIT_WITNESS_FILE = os.environ.get("RAG_AUDIT_WITNESS_FILE") or str(
    DATA_DIR.parent / f"{DATA_DIR.name}-witness" / "audit-witness.jsonl")
AUDIT_WITNESS_SYSLOG = env_bool("RAG_AUDIT_WITNESS_SYSLOG", False)
# Crypto-shredding (apps.audit.keys): the master key that wraps the data keys of audit
# content (mode 0600, never in the database or a backup), and next to it the erasure
# ledger that re-applies erasures to a restored backup.
AUDIT_MASTER_KEY_FILE = os.environ.get("RAG_AUDIT_MASTER_KEY_FILE") or str(DATA_DIR / "keys" / "audit-master.key")
AUDIT_ERASURE_LEDGER = os.environ.get("RAG_AUDIT_ERASURE_LEDGER") or str(
    Path(AUDIT_MASTER_KEY_FILE).parent / "audit-erasures.jsonl")
# Proxies whose X-Forwarded-For entries are believed (rag_platform.client_address): the
# audit trail's IP and sign-in throttling use the first address left of them.
TRUSTED_PROXIES = env_list("RAG_TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    import ipaddress

    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"RAG_TRUSTED_PROXIES: {_proxy!r} is not an address or network") from None
if env_bool("RAG_AUDIT_TRUST_X_FORWARDED_FOR", False):
    raise ImproperlyConfigured("RAG_AUDIT_TRUST_X_FORWARDED_FOR trusted any client's X-Forwarded-For; "
                               "set RAG_TRUSTED_PROXIES to your proxies' addresses instead")
# Retention in days per event class (the part before the dot); HIPAA asks for 6 years.
AUDIT_RETENTION_DEFAULT_DAYS = env_int("RAG_AUDIT_RETENTION_DAYS", 6 * 365 + 2)
AUDIT_RETENTION_DAYS = {
    item.split("=")[0].strip(): int(item.split("=")[1])
    for item in env_list("RAG_AUDIT_RETENTION_BY_CLASS", [])  # e.g. "auth=400,egress=2200"
}
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": AUDIT_CHECKPOINT_MINUTES * 60.0,
                         "options": {"queue": "audit", "expires": AUDIT_CHECKPOINT_MINUTES * 60.0}},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "run" / "celerybeat-schedule")

# --- Ingestion (issue 3) ---
# Parse attempts before a file is quarantined (failed, set aside, audited).
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3)
INGEST_RETRY_BACKOFF_SECONDS = env_float("INGEST_RETRY_BACKOFF_SECONDS", 5.0)  # doubles per retry
# Each file is parsed in a forked child with these limits (memory on top of the worker's).
INGEST_PARSE_MEMORY_MB = env_int("INGEST_PARSE_MEMORY_MB", 1536)
INGEST_PARSE_CPU_SECONDS = env_int("INGEST_PARSE_CPU_SECONDS", 300)
INGEST_PARSE_WALL_SECONDS = env_int("INGEST_PARSE_WALL_SECONDS", 420)
INGEST_PARSE_NICE = env_int("INGEST_PARSE_NICE", 10)
INGEST_PARSE_LEASE_SECONDS = env_int("INGEST_PARSE_LEASE_SECONDS", INGEST_PARSE_WALL_SECONDS + 60)
# An upload's type is decided in the same kind of child, in the process that received it
# (apps.ingestion.sniffing): memory on top of that process's, CPU seconds (wall clock: twice).
INGEST_SNIFF_MEMORY_MB = env_int("INGEST_SNIFF_MEMORY_MB", 1024)
INGEST_SNIFF_SECONDS = env_int("INGEST_SNIFF_SECONDS", 30)
INGEST_EMBED_LEASE_SECONDS = env_int("INGEST_EMBED_LEASE_SECONDS", 600)
INGEST_EMBED_BATCH_CHUNKS = env_int("INGEST_EMBED_BATCH_CHUNKS", 512)  # across documents
# Small text files (txt, md, csv, html up to MAX_BYTES each) are parsed up to N at a time,
# TOTAL_BYTES together, in one sandboxed child: the fork of a worker holding the model costs
# more than parsing them, and the embed step that follows encodes them in one full batch.
INGEST_PARSE_BATCH_DOCS = env_int("INGEST_PARSE_BATCH_DOCS", 100)
# A bulk import sends its first group this early, so the model starts encoding while the rest
# is still being uploaded (apps.ingestion.services.bulk_enqueue).
INGEST_PARSE_FIRST_GROUP_DOCS = env_int("INGEST_PARSE_FIRST_GROUP_DOCS", 10)
INGEST_PARSE_BATCH_MAX_BYTES = env_int("INGEST_PARSE_BATCH_MAX_BYTES", 256 * 1024)
INGEST_PARSE_BATCH_TOTAL_BYTES = env_int("INGEST_PARSE_BATCH_TOTAL_BYTES", 1024 * 1024)
INGEST_BUSY_RECHECK_SECONDS = env_int("INGEST_BUSY_RECHECK_SECONDS", 15)
# Celery beat hands expired claims and unsent documents to new tasks this often
# (apps.ingestion.housekeeping), at most BATCH documents per pass.
INGEST_HOUSEKEEPING_SECONDS = env_float("INGEST_HOUSEKEEPING_SECONDS", 60.0)
INGEST_HOUSEKEEPING_BATCH = env_int("INGEST_HOUSEKEEPING_BATCH", 5000)
CELERY_BEAT_SCHEDULE["ingestion-housekeeping"] = {
    "task": "apps.ingestion.tasks.ingestion_housekeeping", "schedule": INGEST_HOUSEKEEPING_SECONDS,
}
CELERY_TASK_ROUTES = {
    "audit.*": {"queue": "audit"},  # the signer's queue: only it holds the key
    "apps.ingestion.tasks.ingest_document": {"queue": "parse"},
    "apps.ingestion.tasks.embed_documents": {"queue": "embed"},
}
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_SOFT_TIME_LIMIT, INGEST_PARSE_WALL_SECONDS + 60)
CELERY_TASK_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT, CELERY_TASK_SOFT_TIME_LIMIT + 60)

# --- Access control, API and security headers (issue 5) ---
from datetime import timedelta  # noqa: E402

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Older hashes still verify, and are re-hashed with Argon2 at the next sign-in.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one user
# name from one IP address, that pair waits AXES_COOLOFF_MINUTES. Keyed by name AND address,
# so an attacker elsewhere cannot lock a victim out (the victim's own address is not
# locked), and the cool-off ends by itself, so nobody is locked out for good.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The real client behind RAG_TRUSTED_PROXIES, never a client-supplied header.
AXES_CLIENT_IP_CALLABLE = "rag_platform.client_address.client_address"
AXES_VERBOSE = False
# Failed authentications (passwords, API tokens, single sign-on): counted per client address,
# name and window; the first of each is audited at once, the rest as one event with their
# count when the window closes (apps.accounts.failures). A name failing
# AUTH_NAME_FAILURE_LIMIT times in two windows from any addresses pauses password sign-in for
# it (rotating addresses does not get around the per-address pause).
AUTH_FAILURE_WINDOW_SECONDS = env_int("AUTH_FAILURE_WINDOW_SECONDS", 300)
AUTH_FAILURE_NAMES_PER_SOURCE = env_int("AUTH_FAILURE_NAMES_PER_SOURCE", 10)
AUTH_FAILURE_SOURCES_PER_WINDOW = env_int("AUTH_FAILURE_SOURCES_PER_WINDOW", 100)
AUTH_NAME_FAILURE_LIMIT = env_int("AUTH_NAME_FAILURE_LIMIT", 30)
CELERY_BEAT_SCHEDULE["auth-failures-summarise"] = {
    "task": "accounts.summarise_auth_failures", "schedule": float(AUTH_FAILURE_WINDOW_SECONDS),
}
# Sessions: idle timeout (the expiry moves with each request), absolute timeout from sign-in
# (apps.accounts.middleware), and disabled accounts are signed out on their next request.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 8 * 3600)
# Content-Security-Policy: nothing from any other origin, no inline script or style, so an
# answer or a document (rendered as text) cannot make the browser fetch from outside.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# API tokens (apps.api): privileged ones (corpus admins, compliance officers, manage or audit
# scope) live at most this long; minting one needs the password again, or for a single
# sign-on account a sign-in at most API_TOKEN_REAUTH_SECONDS old.
API_TOKEN_PRIVILEGED_MAX_DAYS = env_int("API_TOKEN_PRIVILEGED_MAX_DAYS", 30)
API_TOKEN_REAUTH_SECONDS = env_int("API_TOKEN_REAUTH_SECONDS", 300)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Production behind TLS: DJANGO_SECURE=1 turns on HTTPS redirects, HSTS and secure cookies
# (`manage.py check --deploy` is clean with it; tests/test_security.py runs that check).
if env_bool("DJANGO_SECURE", False):
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP to the pod
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


# --- Single sign-on through OpenID Connect (optional; issue 5) ---
# Off unless OIDC_RP_CLIENT_ID is set: then the sign-in page offers "Sign in with single
# sign-on" next to the password form (apps.accounts.sso). The provider's token, userinfo
# and JWKS hosts are configured endpoints for the egress guard (rag.E004-E006).
SSO_BACKEND = "apps.accounts.sso.SingleSignOnBackend"


def oidc_settings_from_environment() -> dict:
    """The OIDC_* settings read from the environment ({"OIDC_ENABLED": False} when unset)."""
    client_id = secret_from_env_or_file("OIDC_RP_CLIENT_ID")
    if not client_id:
        return {"OIDC_ENABLED": False}
    algorithm = os.environ.get("OIDC_RP_SIGN_ALGO") or "RS256"
    # The issuer is required: accounts are bound to (iss, sub), and an id_token from any
    # other issuer is refused (apps.accounts.sso).
    required = ["OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                "OIDC_OP_USER_ENDPOINT", "OIDC_OP_ISSUER"]
    if algorithm.startswith(("RS", "ES")):
        required.append("OIDC_OP_JWKS_ENDPOINT")
    values = {name: secret_from_env_or_file(name) for name in required + ["OIDC_OP_JWKS_ENDPOINT"]}
    missing = [name for name in required if not values[name]]
    if missing:
        raise ImproperlyConfigured(
            f"OIDC_RP_CLIENT_ID is set, so single sign-on is on, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not (a *_FILE variant also works)")
    groups_claim = os.environ.get("OIDC_GROUPS_CLAIM") or ""
    return {
        "OIDC_ENABLED": True,
        "OIDC_RP_CLIENT_ID": client_id,
        **values,
        "OIDC_RP_SIGN_ALGO": algorithm,
        "OIDC_RP_SCOPES": os.environ.get("OIDC_RP_SCOPES") or "openid email profile",
        "OIDC_USERNAME_CLAIM": os.environ.get("OIDC_USERNAME_CLAIM") or "preferred_username",
        "OIDC_GROUPS_CLAIM": groups_claim,
        "OIDC_ROLE_MAP": parse_role_map(os.environ.get("OIDC_ROLE_MAP") or "", groups_claim),
        "OIDC_CREATE_USER": env_bool("OIDC_CREATE_USER", True),
        "OIDC_USE_PKCE": env_bool("OIDC_USE_PKCE", True),
        "OIDC_USE_NONCE": True,
        "OIDC_ALLOW_UNSECURED_JWT": False,
        "OIDC_TIMEOUT": env_float("OIDC_TIMEOUT_SECONDS", 10.0),
        # A CA bundle for an internal provider's certificate; requests ignores REQUESTS_CA_BUNDLE
        # (and proxy variables, .netrc) for the provider: see apps.accounts.sso.
        "OIDC_VERIFY_SSL": os.environ.get("OIDC_CA_BUNDLE") or env_bool("OIDC_VERIFY_SSL", True),
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
    }


def parse_role_map(raw: str, groups_claim: str) -> dict[str, list[str]]:
    """OIDC_ROLE_MAP: ``IdP group=role,...`` or a JSON object (for group names holding commas,
    such as LDAP DNs: ``{"CN=Clinicians,OU=Groups": "staff"}``) -> {IdP group: [roles]}."""
    import json

    from apps.accounts.roles import ROLE_LABELS  # constants only: safe before Django is set up

    if not raw.strip():
        if groups_claim:
            raise ImproperlyConfigured("OIDC_GROUPS_CLAIM is set but OIDC_ROLE_MAP is empty")
        return {}
    if raw.lstrip().startswith("{"):
        try:
            pairs = [(group, role) for group, roles in json.loads(raw).items()
                     for role in ([roles] if isinstance(roles, str) else roles)]
        except (ValueError, AttributeError, TypeError):
            raise ImproperlyConfigured("OIDC_ROLE_MAP is not a JSON object of group -> role(s)") from None
    else:
        pairs = []
        for item in filter(None, (part.strip() for part in raw.split(","))):
            group, sep, role = item.rpartition("=")
            if not sep or not group.strip():
                raise ImproperlyConfigured(f"OIDC_ROLE_MAP entry {item!r} is not 'IdP group=role'")
            pairs.append((group.strip(), role.strip()))
    mapping: dict[str, list[str]] = {}
    for group, role in pairs:
        if role not in ROLE_LABELS:
            raise ImproperlyConfigured(
                f"OIDC_ROLE_MAP maps {group!r} to {role!r}; roles are {', '.join(ROLE_LABELS)}")
        mapping.setdefault(group, [])
        if role not in mapping[group]:
            mapping[group].append(role)
    if mapping and not groups_claim:
        raise ImproperlyConfigured("OIDC_ROLE_MAP is set but OIDC_GROUPS_CLAIM (the claim to read) is not")
    return mapping


_oidc = oidc_settings_from_environment()
OIDC_ENABLED = _oidc["OIDC_ENABLED"]
globals().update(_oidc)  # when on, the OIDC_* settings mozilla-django-oidc reads
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, SSO_BACKEND]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
