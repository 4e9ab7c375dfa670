"""Request-size limits enforced before any body is read (security review, finding 4).

Django spools a multipart body to the temporary folder while it parses it, and CSRF
checking parses it before any view runs, so a large POST to ``/login/`` with a well-formed
csrftoken cookie used to fill the disk without signing in. Three layers now stop that:

- ``RequestSizeLimitMiddleware`` (the first middleware) answers 413 without reading a
  byte when ``Content-Length`` is over the route's limit: the upload routes allow
  ``UPLOAD_REQUEST_MAX_BYTES``, every other route ``REQUEST_MAX_BYTES``. A body between the
  two cannot be read at all unless the request is signed in (a session, or an API token that
  ninja checks before it reads the body), so an anonymous upload is never spooled either.
- ``UploadSizeLimitHandler`` (the first upload handler) stops a multipart upload as soon as
  one file passes ``UPLOAD_MAX_BYTES``, instead of spooling it whole and refusing it after.
- ``asgi_request_size_limit`` does the same for ASGI servers, where Django reads the whole
  body before any middleware runs.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpResponse

UPLOAD_ROUTES = (
    re.compile(r"^/collections/\d+/upload/$"),
    re.compile(r"^/api/v1/collections/\d+/documents/?$"),
)


def is_upload_route(path: str) -> bool:
    return any(route.match(path) for route in UPLOAD_ROUTES)


def route_limit(path: str) -> int:
    """The largest body this route accepts, in bytes."""
    return settings.UPLOAD_REQUEST_MAX_BYTES if is_upload_route(path) else settings.REQUEST_MAX_BYTES


def _too_large(limit: int) -> HttpResponse:
    return HttpResponse(f"Request body too large (at most {limit:,} bytes here).\n", status=413,
                        content_type="text/plain; charset=utf-8")


class _SignedInOnlyStream:
    """The request body of an upload route, larger than ``REQUEST_MAX_BYTES``: the first read
    (after sign-in has been checked: CSRF or the API's token check) is refused before a byte
    is taken unless the request is signed in, so nothing of it is spooled."""

    def __init__(self, request, stream) -> None:
        self._request, self._stream, self._checked = request, stream, False

    def _check(self) -> None:
        if not self._checked:
            user = getattr(self._request, "user", None)
            if user is None or not user.is_authenticated:
                raise RequestDataTooBig("sign in before uploading")
            self._checked = True

    def read(self, size: int = -1) -> bytes:
        self._check()
        return self._stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        self._check()
        return self._stream.readline(size)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = route_limit(request.path_info)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Bad Content-Length.\n", status=400, content_type="text/plain")
        if length > limit:
            return _too_large(limit)
        if length > settings.REQUEST_MAX_BYTES and hasattr(request, "_stream"):
            # Django's LimitedStream already stops at Content-Length, so only sign-in is left.
            request._stream = _SignedInOnlyStream(request, request._stream)
        return self.get_response(request)


class UploadSizeLimitHandler(FileUploadHandler):
    """Stops the multipart parser once one file passes UPLOAD_MAX_BYTES; the parts already
    received are discarded with the temporary files. The names stopped are kept in
    ``request.uploads_stopped`` so the view can say why a file is missing."""

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.UPLOAD_MAX_BYTES:
            stopped = getattr(self.request, "uploads_stopped", [])
            stopped.append(self.file_name)
            self.request.uploads_stopped = stopped
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler (memory or temporary file) keeps the file


def asgi_request_size_limit(application):
    """Wrap an ASGI application: 413 when the declared or received body passes the route's
    limit, before Django spools it (its ASGI handler reads the body before any middleware)."""

    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await application(scope, receive, send)
        limit = route_limit(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = limit + 1
        received = 0

        async def refuse():
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": f"Request body too large (at most {limit:,} bytes here).\n".encode()})

        if declared > limit:
            return await refuse()

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # Django stops reading (RequestAborted) and answers nothing
                    return {"type": "http.disconnect"}
            return message

        return await application(scope, counting_receive, send)

    return limited
