"""Single sign-on through OpenID Connect (authorization code flow with PKCE), on only when
``OIDC_RP_CLIENT_ID`` is configured (rag_platform/conf/sso.py).

mozilla-django-oidc does the protocol: state, nonce and PKCE in the session, the code
exchange, the id_token's RS256 signature against the provider's JWKS, the nonce. This
backend adds what the platform needs on top:

- the provider is reached with ``requests`` sessions that ignore the environment
  (``trust_env = False``: no proxy variables, no .netrc credentials, no REQUESTS_CA_BUNDLE),
  as the LLM client does; the egress guard allows the provider's hosts only as configured
  endpoints (loopback, private, or on RAG_EGRESS_ALLOW);
- the id_token must be for this client (``aud``) and from ``OIDC_OP_ISSUER`` (required when
  single sign-on is on); the userinfo ``sub`` must be the id_token's;
- accounts are found by the provider's ``(iss, sub)`` (apps.accounts.models.SsoIdentity),
  never by a user name claim; a first sign-in creates an account named by
  ``OIDC_USERNAME_CLAIM`` unless an account of that name exists (an administrator binds it);
  superusers are refused; the roles are mapped from ``OIDC_GROUPS_CLAIM``
  (apps.accounts.services);
- disabled accounts are refused at sign-in and on every later request (``get_user``), like
  password accounts;
- ``authenticate`` acts only when the callback view asks (``sso_callback=True``), never for
  a password form that happens to carry ``code`` and ``state`` in its query string.
"""

from __future__ import annotations

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.utils.encoding import smart_str
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts import services

METHOD = "oidc"


class SingleSignOnRefused(Exception):
    """The provider vouched for someone this platform does not let in (reason in the message)."""

    def __init__(self, reason: str, username: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.username = username


def provider_session() -> requests.Session:
    """A requests session for the identity provider that reads nothing from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


class SingleSignOnBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, sso_callback: bool = False, **kwargs):
        if not sso_callback:
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    # --- the three calls to the provider, without the environment's proxies ----------------
    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        with provider_session() as session:
            return session.request(method, url, verify=self.get_settings("OIDC_VERIFY_SSL", True),
                                   timeout=self.get_settings("OIDC_TIMEOUT", 10.0), allow_redirects=False,
                                   **kwargs)

    def get_token(self, payload):
        response = self._request("POST", self.OIDC_OP_TOKEN_ENDPOINT, data=payload)
        self.raise_token_response_error(response)
        return response.json()

    def get_userinfo(self, access_token, id_token, payload):
        response = self._request("GET", self.OIDC_OP_USER_ENDPOINT,
                                 headers={"Authorization": f"Bearer {access_token}"})
        response.raise_for_status()
        if response.headers.get("content-type", "").lower().startswith("application/jwt"):
            return self.verify_token(response.text)
        return response.json()

    def retrieve_matching_jwk(self, token):
        import jwt

        response = self._request("GET", self.OIDC_OP_JWKS_ENDPOINT)
        response.raise_for_status()
        header = jwt.get_unverified_header(token)
        key = None
        for jwk in response.json().get("keys", []):
            if jwk.get("kid") != smart_str(header.get("kid")):
                continue
            if "alg" in jwk and jwk["alg"] != smart_str(header.get("alg")):
                continue
            key = jwk
        if key is None:
            raise SuspiciousOperation("No key in the provider's JWKS matches the id_token's kid and alg.")
        return jwt.PyJWK(key)

    # --- checks mozilla-django-oidc leaves to the site ----------------------------------
    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        if "nonce" in kwargs:  # the id_token (a signed userinfo response carries no nonce)
            audience = payload.get("aud")
            audiences = [audience] if isinstance(audience, str) else list(audience or [])
            if self.OIDC_RP_CLIENT_ID not in audiences:
                raise SuspiciousOperation("The id_token was not issued for this client (aud).")
            issuer = self.get_settings("OIDC_OP_ISSUER", "")
            if not issuer or payload.get("iss") != issuer:
                raise SuspiciousOperation("The id_token comes from another issuer (iss).")
            if not payload.get("sub"):
                raise SuspiciousOperation("The id_token names no subject (sub).")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SingleSignOnRefused("the userinfo subject differs from the id_token's")
        claims = {**payload, **userinfo}  # groups are often in the id_token only
        username = str(claims.get(settings.OIDC_USERNAME_CLAIM) or "").strip()
        if not username:
            raise SingleSignOnRefused(f"the provider sent no {settings.OIDC_USERNAME_CLAIM!r} claim")
        try:
            user, details = services.sso_user_sync(
                issuer=str(payload.get("iss") or ""), subject=str(payload.get("sub") or ""),
                username=username, claims=claims, create=self.get_settings("OIDC_CREATE_USER", True))
        except services.SsoUserRefused as refused:
            raise SingleSignOnRefused(str(refused), username) from None
        # Read by the sign-in receiver (apps.accounts.signals) for the auth.signed_in event.
        user.sso_sign_in = {"method": METHOD, "issuer": str(payload.get("iss", "")), "subject": str(payload["sub"]),
                            **details}
        return user

    def verify_claims(self, claims):  # the user name claim is checked above instead
        return True
