"""Single sign-on callback (the start view is mozilla-django-oidc's own; routes exist only
when OIDC_RP_CLIENT_ID is configured: rag_platform/urls.py)."""

from __future__ import annotations

import logging

import jwt
import requests
from django.conf import settings
from django.contrib import auth, messages
from django.core.exceptions import SuspiciousOperation
from django.shortcuts import redirect, resolve_url
from django.views import View

from apps.accounts import services
from apps.accounts.sso import SingleSignOnBackend, SingleSignOnRefused

logger = logging.getLogger(__name__)

FAILED_MESSAGE = "Single sign-on did not sign you in. Try again, or ask your administrator."
# What can go wrong between the provider's redirect and a signed-in user: a forged or replayed
# response, a bad signature or nonce, an unreachable provider (or one the egress guard
# refuses), a malformed answer, or an identity this platform refuses.
_FAILURES = (SuspiciousOperation, SingleSignOnRefused, jwt.PyJWTError, requests.RequestException,
             OSError, ValueError, KeyError, TypeError)


class SingleSignOnCallbackView(View):
    http_method_names = ["get"]

    def get(self, request):
        states = request.session.get("oidc_states") or {}
        state = request.GET.get("state", "")
        entry = states.pop(state, None) if state else None  # single use, also when it fails
        request.session["oidc_states"] = states
        next_url = request.session.pop("oidc_login_next", None)
        if request.GET.get("error"):
            return self._failed(f"the provider answered {request.GET['error'][:100]!r}")
        if entry is None:
            return self._failed("unknown or already used state (a forged or replayed response)")
        if not request.GET.get("code"):
            return self._failed("the provider sent no authorization code")
        backend = SingleSignOnBackend()
        try:
            user = backend.authenticate(request, sso_callback=True, nonce=entry.get("nonce"),
                                        code_verifier=entry.get("code_verifier"))
        except _FAILURES as error:
            logger.warning("single sign-on failed: %s: %s", type(error).__name__, error)
            if isinstance(error, SingleSignOnRefused):
                return self._failed(error.reason, error.username)
            return self._failed(f"{type(error).__name__}: {error}")
        if user is None:
            return self._failed("the provider's answer did not identify a user")
        if not user.is_active:
            return self._failed("disabled account", user.get_username())
        auth.login(request, user, backend=settings.SSO_BACKEND)
        return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))

    def _failed(self, reason: str, username: str = ""):
        services.sso_sign_in_failed_record(reason=reason, username=username)
        if self.request.user.is_authenticated:  # a failed sign-in never leaves an earlier one open
            auth.logout(self.request)
        messages.error(self.request, FAILED_MESSAGE)
        return redirect(settings.LOGIN_URL)
