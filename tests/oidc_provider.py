"""A small OpenID Connect provider on 127.0.0.1 for the single sign-on tests.

It speaks the authorization code flow over real HTTP: ``/authorize`` signs in whoever
``identity`` names and redirects back with a one-time code; ``/token`` checks the client's
secret, the code, the redirect URI and the PKCE verifier, and returns an RS256 id_token signed
with a key generated here; ``/userinfo`` answers for the access token; ``/jwks`` publishes the
public key. ``tamper`` makes it misbehave the way an attacker or a broken provider would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class OidcTestProvider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # an attacker's
        self.kid = "test-signing-key"
        self.client_id = "private-rag"
        self.client_secret = secrets.token_urlsafe(24)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.reset()

    def reset(self) -> None:
        self.identity: dict = {}  # claims of the person who signs in at /authorize next
        self.id_token_only = ("groups",)  # claims sent in the id_token but not by /userinfo
        self.tamper = ""  # "bad_signature", "wrong_nonce", "other_audience", "other_issuer"
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []  # (method, path) of every request received

    def start(self) -> OidcTestProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def environment(self, **extra: str) -> dict[str, str]:
        """The variables an operator would set to use this provider."""
        return {
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_RP_SIGN_ALGO": "RS256",
            **extra,
        }

    # --- the protocol ---------------------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> tuple[int, dict, bytes]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, b"unknown client or response type"
        if not query.get("redirect_uri") or not query.get("state"):
            return 400, {}, b"redirect_uri and state are required"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
                            "challenge": query.get("code_challenge"), "method": query.get("code_challenge_method"),
                            "claims": dict(self.identity)}
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        return 302, {"Location": target}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict, bytes]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _json(401, {"error": "invalid_client"})
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return _json(400, {"error": "invalid_grant"})
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return _json(400, {"error": "invalid_grant", "error_description": "redirect_uri differs"})
        if grant["challenge"]:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if grant["method"] != "S256" or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                return _json(400, {"error": "invalid_grant", "error_description": "PKCE verifier"})
        claims = grant["claims"]
        now = int(time.time())
        id_claims = {"iss": self.issuer, "sub": claims["sub"], "aud": self.client_id, "iat": now, "exp": now + 300,
                     "nonce": grant["nonce"], **claims}
        if self.tamper == "wrong_nonce":
            id_claims["nonce"] = "not-the-nonce-the-client-sent"
        if self.tamper == "other_audience":
            id_claims["aud"] = "some-other-application"
        if self.tamper == "other_issuer":
            id_claims["iss"] = "https://another-provider.example"
        signing_key = self.other_key if self.tamper == "bad_signature" else self.key
        id_token = jwt.encode(id_claims, signing_key, algorithm="RS256", headers={"kid": self.kid})
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = {k: v for k, v in claims.items() if k not in self.id_token_only}
        return _json(200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                           "id_token": id_token})

    def userinfo(self, authorization: str) -> tuple[int, dict, bytes]:
        claims = self.access_tokens.get(authorization.removeprefix("Bearer "))
        if claims is None:
            return _json(401, {"error": "invalid_token"})
        return _json(200, claims)

    def jwks(self) -> tuple[int, dict, bytes]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return _json(200, {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]})


def _json(status: int, body: dict) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _handler(provider: OidcTestProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            provider.log.append(("GET", url.path))
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/authorize":
                self._send(*provider.authorize(query))
            elif url.path == "/userinfo":
                self._send(*provider.userinfo(self.headers.get("Authorization", "")))
            elif url.path == "/jwks":
                self._send(*provider.jwks())
            else:
                self._send(404, {}, b"")

        def do_POST(self) -> None:
            provider.log.append(("POST", self.path))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.path == "/token":
                self._send(*provider.token({k: v[0] for k, v in parse_qs(body).items()}))
            else:
                self._send(404, {}, b"")

        def _send(self, status: int, headers: dict, body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler
