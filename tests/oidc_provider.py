"""A small OpenID Connect provider for the tests, on 127.0.0.1: discovery, authorization
code flow (with PKCE), signed RS256 ID tokens, JWKS and userinfo. Built on Authlib's pieces
(joserfc, Authlib's JOSE library, signs the tokens; Authlib's PKCE helper checks the
verifier); the HTTP side is the standard library's threaded server.

    with OIDCProvider() as op:
        op.user = {"sub": "u1", "email": "ana@example.org", "roles": ["reviewer"]}
        op.issuer, op.client_id, op.client_secret     # for the client's configuration

The authorization endpoint signs in whoever `op.user` says, without a login screen: the
tests are about what the app does with the tokens, not about the provider's own form.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey


class OIDCProvider:
    def __init__(self, client_id: str = "modelwatch-test", client_secret: str | None = None):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"},
                                       private=True)
        self.user: dict[str, Any] = {"sub": "nobody"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []      # paths seen, for assertions
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OIDCProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        i = self.issuer
        return {"issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
                "jwks_uri": f"{i}/jwks", "userinfo_endpoint": f"{i}/userinfo",
                "end_session_endpoint": f"{i}/logout",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "email", "email_verified", "name", "roles", "groups"]}

    def id_token(self, claims: dict[str, Any], nonce: str | None) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, **claims}
        if nonce:
            payload["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, payload, self.key)

    def _handler(self):
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                op.requests.append(url.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(op.metadata())
                if url.path == "/jwks":
                    return self._json({"keys": [op.key.as_dict(private=False)]})
                if url.path == "/authorize":
                    if q.get("client_id") != op.client_id or q.get("response_type") != "code":
                        return self._json({"error": "invalid_request"}, 400)
                    code = secrets.token_urlsafe(16)
                    op.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                                      "challenge": q.get("code_challenge"), "user": dict(op.user)}
                    self.send_response(302)
                    self.send_header("Location", q["redirect_uri"] + "?" + urlencode(
                        {"code": code, "state": q.get("state", "")}))
                    self.end_headers()
                    return None
                if url.path == "/userinfo":
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    if token not in op.access:
                        return self._json({"error": "invalid_token"}, 401)
                    return self._json(op.access[token])
                if url.path == "/logout":
                    target = q.get("post_logout_redirect_uri")
                    self.send_response(302 if target else 200)
                    if target:
                        self.send_header("Location", target)
                    self.end_headers()
                    return None
                return self._json({"error": "not_found"}, 404)

            def do_POST(self):
                url = urlparse(self.path)
                op.requests.append(url.path)
                if url.path != "/token":
                    return self._json({"error": "not_found"}, 404)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                cid, secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Basic "):
                    cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                if cid != op.client_id or secret != op.client_secret:
                    return self._json({"error": "invalid_client"}, 401)
                grant = op.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("grant_type") != "authorization_code" \
                        or form.get("redirect_uri") != grant["redirect_uri"]:
                    return self._json({"error": "invalid_grant"}, 400)
                if grant["challenge"] and create_s256_code_challenge(form.get("code_verifier", "")) != grant["challenge"]:
                    return self._json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
                access = secrets.token_urlsafe(24)
                op.access[access] = grant["user"]
                return self._json({"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                   "scope": "openid email profile",
                                   "id_token": op.id_token(grant["user"], grant["nonce"])})

        return Handler
