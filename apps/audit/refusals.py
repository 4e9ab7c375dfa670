"""What a server process refuses to start with, checked once Django is set up.

The role is the one its entry point named (rag_platform.process.start): web and ASGI are
checked when Django starts (rag_platform.apps.PlatformConfig.ready), the Celery worker and
beat when they start (rag_platform.celery_app). Management commands run the system checks
instead (apps.audit.checks). Each refusal raises ImproperlyConfigured with the reason.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from rag_platform.process.runtime import SERVER_ROLES, WEB_ROLES


def refuse_unsafe_start(role: str) -> None:
    """Public endpoints stop every server; web also needs the master key, and a worker that is
    the signer its signing key."""
    if role in SERVER_ROLES:
        refuse_public_endpoints()
    if role in WEB_ROLES:
        refuse_without_master_key()
    if role == "celery worker":
        refuse_signer_without_its_key()


def refuse_without_master_key() -> None:
    """The web server seals questions and reads audit content: no usable master key, no
    start (workers only need it to delete documents, and say so then)."""
    from apps.audit.keys import master_key_problem

    if problem := master_key_problem():
        raise ImproperlyConfigured(problem)


def refuse_public_endpoints() -> None:
    """Raise ImproperlyConfigured if a configured endpoint is on a public address."""
    from apps.audit.checks import check_endpoints_are_local

    errors = [e for e in check_endpoints_are_local() if e.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors))


def refuse_signer_without_its_key() -> None:
    """A worker started as the signer stops at once, with the reason, if its key is missing
    (it never makes one up); other processes never load it."""
    from apps.audit import signing

    if signing.is_signer():
        try:
            signing.load_private_key()
        except (signing.SigningKeyUnavailable, ValueError) as error:
            raise ImproperlyConfigured(f"audit signer: {error}") from None
