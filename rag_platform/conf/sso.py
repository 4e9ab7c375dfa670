"""Single sign-on through OpenID Connect (optional): the OIDC_* settings read from the
environment, and the SSO backend added to AUTHENTICATION_BACKENDS when it is on."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from rag_platform.conf.core import AUTHENTICATION_BACKENDS
from rag_platform.conf.env import env_bool, env_float
from rag_platform.process.runtime import secret_from_env_or_file

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
