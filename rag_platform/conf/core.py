"""Django core: project and data directories, secret key, debug, allowed hosts, apps, middleware,
templates, i18n, static files."""

from __future__ import annotations

import os

from rag_platform.conf.env import env_bool, env_list
from rag_platform.process.runtime import PROJECT_DIR, data_dir, local_secret_key, secret_from_env_or_file

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
