"""Sign-in throttling that leaves non-web callers alone.

django-axes needs the request to key its counters on user name + IP. ``authenticate()``
without a request comes only from code on the server (management commands, the shell, the
test client), never from someone on the network, so this backend steps aside for it and the
next backend (ModelBackend) decides. Every web and API sign-in passes a request."""

from axes.backends import AxesStandaloneBackend


class ThrottledSignInBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
