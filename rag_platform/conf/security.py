"""Security: password validation and hashing, sign-in throttling, sessions, CSP, API tokens,
and HTTPS (DJANGO_SECURE). The secret key and allowed hosts are in rag_platform.conf.core."""

from __future__ import annotations

from datetime import timedelta

from rag_platform.conf.env import env_bool, env_int

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "answering:ask"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # replaced below (SESSION_IDLE_SECONDS)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Access control, API and security headers (issue 5) ---
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
AXES_CLIENT_IP_CALLABLE = "rag_platform.process.client_address.client_address"
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
