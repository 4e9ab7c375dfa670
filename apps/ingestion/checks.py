"""System checks: pandoc keeps its sandbox (rag.E020); the parse sandbox is confined (rag.E021).

pandoc (odt, rtf) runs as a subprocess the egress guard cannot see, and on its own it
fetches images linked by URL. unstructured runs it with ``--sandbox``, except that with
``ALLOW_PANDOC_NO_SANDBOX=true`` it retries a failed conversion without it. The setting is
refused at start-up (``manage.py check`` / ``migrate``, and the Celery and web processes
through apps.ingestion.apps), and the parse child refuses to run pandoc while it is set.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from apps.ingestion.parsing.offline import PANDOC_NO_SANDBOX_VARIABLE, pandoc_sandbox_dropped


@register(Tags.security, "egress")
def check_pandoc_sandbox(app_configs=None, **kwargs):
    if not pandoc_sandbox_dropped():
        return []
    return [Error(
        f"{PANDOC_NO_SANDBOX_VARIABLE} is set: pandoc could run without its sandbox.",
        hint=("Without --sandbox pandoc fetches images and other resources linked from an uploaded "
              "document, from a process the egress guard cannot see. Unset the variable."),
        id="rag.E020",
    )]


@register(Tags.security, "sandbox")
def check_sandbox_isolation(app_configs=None, **kwargs):
    """The parse and type-check children are confined by Landlock and seccomp (security review M1)."""
    from apps.ingestion.confinement import isolation

    layers = isolation()
    if not layers.startswith("weak"):
        return []
    message = (f"the parse sandbox is {layers} on this machine: a parser exploit could read the secrets, "
               "the stored files of every collection and the database and broker sockets.")
    hint = "Run on Linux >= 5.13 with Landlock enabled (lsm=...,landlock) on x86_64 or aarch64."
    if settings.INGEST_SANDBOX_ALLOW_WEAK:
        return [Warning(message, hint=hint + " INGEST_SANDBOX_ALLOW_WEAK=true lets it parse anyway.", id="rag.W021")]
    return [Error(message, hint=hint + " Or set INGEST_SANDBOX_ALLOW_WEAK=true to accept it.", id="rag.E021")]
