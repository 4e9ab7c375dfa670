"""System checks: configured endpoints on public addresses are refused at start-up.

Runs with every management command (``migrate`` once per release, ``check --deploy``) and
from the Celery worker/beat and WSGI start-up via apps.audit.refusals.
"""

from django.core.checks import Error, Tags, Warning, register

EGRESS_TAG = "egress"


@register(Tags.security, EGRESS_TAG)
def check_endpoints_are_local(app_configs=None, **kwargs):
    from rag_platform.process import egress, egress_policy

    problems = []
    allow = egress_policy.allowlist_from_env()
    for endpoint in egress_policy.configured_endpoints():
        if endpoint.locality(allow) == "PUBLIC":
            problems.append(Error(
                f"{endpoint.variable} points at {endpoint.host}, a public address.",
                hint=("Data would leave the environment. Use a private or loopback address, or, if "
                      f"this really is your own service, add '{endpoint.host}' to RAG_EGRESS_ALLOW."),
                id=f"rag.E00{egress_policy.ENDPOINT_VARIABLES.index(endpoint.variable) + 1}",
            ))
    if not egress.is_installed():
        problems.append(Warning("The egress guard is not installed in this process.", id="rag.W001"))
    return problems


@register(Tags.security)
def check_master_key_permissions(app_configs=None, **kwargs):
    """A master key file readable by group or others is refused (rag.E040)."""
    from apps.audit.keys import master_key_path, master_key_problem

    path = master_key_path()
    if path.exists() and (problem := master_key_problem(path)):
        return [Error(problem, id="rag.E040")]
    return []


@register(Tags.security, deploy=True)
def check_master_key_present(app_configs=None, **kwargs):
    """``check --deploy``: production needs the master key that seals audit content (rag.E041)."""
    from apps.audit.keys import master_key_path, master_key_problem

    path = master_key_path()
    if not path.exists():
        return [Error(master_key_problem(path), id="rag.E041",
                      hint="Set RAG_AUDIT_MASTER_KEY_FILE to the key's file (mode 0600); keep a copy in your key store.")]
    return []
