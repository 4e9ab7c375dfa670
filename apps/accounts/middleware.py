"""Session limits the idle timeout cannot give.

Idle: SESSION_COOKIE_AGE with SESSION_SAVE_EVERY_REQUEST (the expiry moves with each request).
Absolute: a session ends SESSION_ABSOLUTE_SECONDS after sign-in however busy it is, so a
stolen or forgotten session cannot be kept alive for ever.
Disabled accounts: Django's ModelBackend.get_user refuses inactive users on every request
(tests/test_security.py checks it), so disabling an account ends its sessions at once.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

SIGNED_IN_AT = "signed_in_at"


@receiver(user_logged_in, dispatch_uid="session_signed_in_at")
def _remember_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = int(time.time())


class AbsoluteSessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            started = request.session.get(SIGNED_IN_AT)
            if started is None:
                request.session[SIGNED_IN_AT] = int(time.time())
            elif time.time() - started > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
                if not request.path.startswith("/api/"):
                    return redirect_to_login(request.get_full_path())
        return self.get_response(request)
