"""System check: pandoc keeps its sandbox.

pandoc (odt, rtf) runs as a subprocess the egress guard cannot see, and on its own it
fetches images linked by URL. unstructured runs it with ``--sandbox``, except that with
``ALLOW_PANDOC_NO_SANDBOX=true`` it retries a failed conversion without it. The setting is
refused at start-up (``manage.py check`` / ``migrate``, and the Celery and web processes
through apps.ingestion.apps), and the parse child refuses to run pandoc while it is set.
"""

from django.core.checks import Error, Tags, register

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
