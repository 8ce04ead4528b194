"""OIDC mode against a real (small) OpenID Connect provider started on 127.0.0.1
(tests/oidc_provider.py).

1. Role mapping on the provider's real tokens: an authorization-code flow with PKCE run by
   Authlib's client, the ID token verified against the provider's JWKS (signature, issuer,
   audience, expiry, nonce), then monitoring.auth.oidc decides the role.
2. The whole st.login journey in headless Chromium against a real `streamlit run` server
   configured for the provider: sign in, see the role the claim gives, sign out.
"""

from __future__ import annotations

import json
import secrets

import pytest
import requests

from monitoring.auth import users
from monitoring.auth.oidc import role_for_claims
from monitoring.auth.roles import Actor, PermissionDenied
from monitoring.auth.settings import load
from monitoring.auth.store import open_auth_db
from tests.oidc_provider import OIDCProvider

ADMIN = Actor("root", "admin")


@pytest.fixture
def op():
    with OIDCProvider() as provider:
        yield provider


def sign_in(op: OIDCProvider, user: dict) -> dict:
    """Run the code flow as a relying party would; returns the verified ID-token claims."""
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session
    from joserfc import jwt
    from joserfc.jwk import KeySet

    op.user = user
    meta = requests.get(op.metadata_url, timeout=5).json()
    client = OAuth2Session(op.client_id, op.client_secret, scope="openid email profile",
                           redirect_uri="http://127.0.0.1:9/oauth2callback", code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    uri, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce,
                                                 code_verifier=verifier)
    back = requests.get(uri, allow_redirects=False, timeout=5).headers["Location"]
    token = client.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": op.issuer},
                          aud={"essential": True, "value": op.client_id},
                          nonce={"essential": True, "value": nonce}, exp={"essential": True}
                          ).validate(decoded.claims)
    return decoded.claims


def test_the_provider_issues_tokens_a_relying_party_accepts(op):
    claims = sign_in(op, {"sub": "u1", "email": "ana@example.org", "roles": ["reviewer"]})
    assert claims["sub"] == "u1" and claims["iss"] == op.issuer and claims["aud"] == op.client_id
    assert {"/authorize", "/token", "/jwks"} <= set(op.requests)


@pytest.fixture
def directory(tmp_path):
    """A users table: lea (lead, by e-mail), old (disabled, by e-mail)."""
    e = open_auth_db(f"sqlite:///{tmp_path / 'users.sqlite'}")
    s = load({"mode": "oidc"})
    users.add_user(e, "root", "admin", bootstrap=True, settings=s)
    users.add_user(e, "lea", "lead", email="Lea@Example.org", actor=ADMIN, settings=s)
    users.add_user(e, "old", "admin", email="old@example.org", actor=ADMIN, settings=s)
    users.disable(e, "old", actor=ADMIN, settings=s)
    yield e
    e.dispose()


CASES = [
    # (settings, claims the provider puts in the ID token, expected (name, role, source) or refusal)
    ({}, {"sub": "1", "email": "ana@example.org", "roles": ["reviewer"]},
     ("ana@example.org", "reviewer", "claim roles")),
    ({}, {"sub": "2", "email": "x@example.org", "roles": ["viewer", "admin", "reviewer"]},
     ("x@example.org", "admin", "claim roles")),
    ({}, {"sub": "3", "email": "x@example.org", "roles": "lead"}, ("x@example.org", "lead", "claim roles")),
    ({"role_claim": "groups", "role_map": {"ml-leads": "lead", "ml": "reviewer"}},
     {"sub": "4", "email": "g@example.org", "groups": ["staff", "ml", "ml-leads"]},
     ("g@example.org", "lead", "claim groups")),
    ({}, {"sub": "5", "email": "lea@example.org", "email_verified": True}, ("lea", "lead", "users table")),
    ({}, {"sub": "5", "email": "LEA@example.org", "roles": ["reviewer"]}, ("lea", "reviewer", "claim roles")),
    ({}, {"sub": "6", "email": "lea@example.org", "email_verified": False}, "not verified"),
    ({"default_role": "viewer"}, {"sub": "7", "email": "new@example.org"},
     ("new@example.org", "viewer", "default_role")),
    ({}, {"sub": "8", "email": "new@example.org"}, "has no role here"),
    ({}, {"sub": "9", "email": "new@example.org", "roles": ["owner"]}, "has no role here"),
    ({}, {"sub": "10", "email": "old@example.org", "roles": ["admin"]}, "disabled"),
    ({}, {"sub": "11", "preferred_username": "pat", "roles": ["viewer"]}, ("pat", "viewer", "claim roles")),
]


@pytest.mark.parametrize("settings, claims, expected", CASES)
def test_roles_from_the_providers_real_tokens(op, directory, settings, claims, expected):
    verified = sign_in(op, claims)
    s = load({"mode": "oidc", **settings})
    if isinstance(expected, str):
        with pytest.raises(PermissionDenied, match=expected):
            role_for_claims(directory, verified, s)
    else:
        assert role_for_claims(directory, verified, s) == expected


# -- the st.login journey ------------------------------------------------------------------------

@pytest.mark.browser
def test_st_login_against_the_provider_in_chromium(op, streamlit_server, browser, tmp_path, generated_logs):
    """Streamlit's own st.login: the button sends the browser to the provider, the callback
    sets Streamlit's identity cookie, the app maps the claim to a role; sign-out ends it."""
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'   # Streamlit fills in its port
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{op.client_id}"\n'
        f'client_secret = "{op.client_secret}"\n'
        f'server_metadata_url = "{op.metadata_url}"\n')
    op.user = {"sub": "u-42", "email": "rev@example.org", "email_verified": True, "name": "Rev",
               "roles": ["reviewer"]}
    base = streamlit_server(MONITORING_LOGS=generated_logs, MODELWATCH_AUTH_MODE="oidc",
                            STREAMLIT_SECRETS_FILES=str(secrets_file))
    page = browser.new_page()
    try:
        page.goto(base)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as").wait_for(timeout=60_000)
        sidebar = page.locator("[data-testid=stSidebar]").inner_text()
        assert "rev@example.org" in sidebar and "reviewer" in sidebar
        assert "/authorize" in op.requests and "/token" in op.requests
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    finally:
        page.close()
    log = "\n".join(p.read_text() for p in tmp_path.glob("streamlit-*.log"))
    assert op.client_secret not in log
    db = open_auth_db(f"sqlite:///{tmp_path / 'server.sqlite'}")
    from monitoring.auth import audit

    trail = audit.query(db, action="auth")
    db.dispose()
    assert ("rev@example.org", "auth.login", "ok") in list(zip(trail["actor"], trail["action"], trail["outcome"], strict=True))
    assert json.loads(trail.filter(trail["action"] == "auth.login")["detail"][0])["role_from"] == "claim roles"
    for value in (op.client_secret, *op.access):
        assert value not in trail.write_csv()

