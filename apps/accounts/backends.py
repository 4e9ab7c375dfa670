"""Sign-in throttling that leaves non-web callers alone.

django-axes keys its counters on user name + client address (the real client behind
RAG_TRUSTED_PROXIES: rag_platform.process.client_address). On top of it, a user name that failed
AUTH_NAME_FAILURE_LIMIT times from any mix of addresses is paused too
(apps.accounts.failures.name_paused), so rotating source addresses does not get around the
per-address pause. ``authenticate()`` without a request comes only from code on the server
(management commands, the shell, the test client), never from someone on the network, so
this backend steps aside for it and the next backend (ModelBackend) decides. Every web and
API sign-in passes a request."""

from axes.backends import AxesStandaloneBackend
from django.core.exceptions import PermissionDenied


class ThrottledSignInBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        from apps.accounts.failures import name_paused

        if name_paused(str(username or "")):
            request.axes_locked_out = True  # django-axes' middleware answers with its pause page
            raise PermissionDenied("sign-in paused for this user name")
        return super().authenticate(request, username=username, password=password, **kwargs)
