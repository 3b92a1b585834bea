"""Access control without I/O: keys, tokens (own and OIDC), buckets, scope, declarations."""

import importlib
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request

from shared.auth import Principal, Role, allow, can_see
from shared.auth.app import ANONYMOUS_PATHS, OPERATIONS_PATHS, api_routes, route_roles
from shared.auth.keys import digest, matches, new_key, split_key
from shared.auth.passwords import hash_password, verify_password
from shared.auth.ratelimit import TokenBuckets, retry_after_header
from shared.auth.settings import DEV_ONLY_JWT_SECRET, AuthSettings, RateLimit
from shared.auth.tokens import InvalidTokenError, TokenVerifier, issue_token
from shared.errors import install_problem_handlers
from shared.http_limits import BodyLimitMiddleware
from shared.time import utcnow

SERVICE_APPS = ("intake_service", "triage_service", "resolution_service", "notification_service")


class TestApiKeys:
    def test_a_new_key_splits_into_its_id_and_a_secret_that_matches_the_stored_hash(self):
        key = new_key()
        assert key.secret.startswith(f"cpk_{key.key_id}_")
        parts = split_key(key.secret)
        assert parts is not None
        key_id, secret = parts
        assert key_id == key.key_id
        assert matches(secret, key.secret_sha256)
        tampered = secret[:-1] + ("B" if secret.endswith("A") else "A")
        assert not matches(tampered, key.secret_sha256)
        assert key.secret_sha256 == digest(secret)
        assert secret not in key.secret_sha256

    @pytest.mark.parametrize("presented", ["", "cpk_short_x", "Bearer abc", "cpk_" + "a" * 60])
    def test_malformed_keys_are_refused_before_any_lookup(self, presented: str):
        assert split_key(presented) is None


class TestPasswords:
    def test_argon2_hash_verifies_the_password_and_nothing_else(self):
        stored = hash_password("s3cret-pass")
        assert stored.startswith("$argon2id$")
        assert verify_password("s3cret-pass", stored)
        assert not verify_password("wrong", stored)
        assert not verify_password("s3cret-pass", None)


class TestOwnTokens:
    async def test_an_issued_token_names_the_user_role_and_teams(self):
        settings = AuthSettings()
        token, ttl = issue_token(
            settings, username="alice", role=Role.AGENT, teams=frozenset({"logistics"})
        )
        principal = await TokenVerifier(settings).verify(token)
        assert (principal.role, principal.subject, principal.teams) == (
            Role.AGENT,
            "alice",
            frozenset({"logistics"}),
        )
        assert principal.id == "agent:alice"
        assert ttl == settings.token_ttl_seconds

    async def test_a_token_signed_with_another_secret_is_refused(self):
        token, _ = issue_token(
            AuthSettings(jwt_secret="another-secret-" + "x" * 32),
            username="mallory",
            role=Role.ADMIN,
            teams=frozenset(),
        )
        with pytest.raises(InvalidTokenError):
            await TokenVerifier(AuthSettings()).verify(token)

    async def test_an_expired_token_is_refused(self):
        claims = {
            "iss": "complaints-platform",
            "aud": "complaints-platform",
            "sub": "alice",
            "role": "agent",
            "teams": [],
            "iat": utcnow() - timedelta(hours=2),
            "exp": utcnow() - timedelta(hours=1),
        }
        token = jwt.encode(claims, DEV_ONLY_JWT_SECRET, algorithm="HS256")
        with pytest.raises(InvalidTokenError):
            await TokenVerifier(AuthSettings()).verify(token)

    async def test_an_unsigned_token_is_refused(self):
        token = jwt.encode(
            {"iss": "complaints-platform", "sub": "x", "role": "admin"}, None, algorithm="none"
        )
        with pytest.raises(InvalidTokenError):
            await TokenVerifier(AuthSettings()).verify(token)

    def test_production_refuses_the_development_secret(self):
        with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
            AuthSettings().check_for("production")
        AuthSettings(jwt_secret="a-real-secret-" + "y" * 40).check_for("production")
        AuthSettings().check_for("development")

    def test_operations_are_open_locally_and_protected_in_production(self):
        assert not AuthSettings().operations_protected("development")
        assert AuthSettings().operations_protected("production")
        assert AuthSettings(protect_operations=True).operations_protected("test")


@pytest.fixture(scope="module")
def oidc_issuer() -> Any:
    """An RSA key and a JWKS endpoint on loopback, like an external OpenID Connect issuer."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "test-kid", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield private, f"http://127.0.0.1:{server.server_port}/jwks"
    server.shutdown()


class TestOidcTokens:
    def _settings(self, jwks_url: str) -> AuthSettings:
        return AuthSettings(
            oidc_issuer="https://idp.example",
            oidc_jwks_url=jwks_url,
            oidc_audience="complaints",
        )

    def _token(self, private: Any, **overrides: Any) -> str:
        claims = {
            "iss": "https://idp.example",
            "aud": "complaints",
            "sub": "sso-bob",
            "role": "supervisor",
            "teams": ["cs_quality"],
            "exp": utcnow() + timedelta(minutes=5),
            **overrides,
        }
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "test-kid"})

    async def test_a_token_of_the_configured_issuer_is_verified_through_its_jwks(
        self, oidc_issuer: Any
    ):
        private, url = oidc_issuer
        principal = await TokenVerifier(self._settings(url)).verify(self._token(private))
        assert (principal.role, principal.subject, principal.teams) == (
            Role.SUPERVISOR,
            "sso-bob",
            frozenset({"cs_quality"}),
        )

    async def test_a_token_for_another_audience_or_issuer_is_refused(self, oidc_issuer: Any):
        private, url = oidc_issuer
        verifier = TokenVerifier(self._settings(url))
        with pytest.raises(InvalidTokenError):
            await verifier.verify(self._token(private, aud="someone-else"))
        with pytest.raises(InvalidTokenError):
            await verifier.verify(self._token(private, iss="https://evil.example"))

    async def test_oidc_tokens_are_refused_when_no_issuer_is_configured(self, oidc_issuer: Any):
        private, _ = oidc_issuer
        with pytest.raises(InvalidTokenError):
            await TokenVerifier(AuthSettings()).verify(self._token(private))


class TestTokenBuckets:
    def test_a_burst_passes_then_waits_for_the_refill(self):
        now = [0.0]
        buckets = TokenBuckets(clock=lambda: now[0])
        limit = RateLimit(per_second=2, burst=3)
        assert [buckets.take("merchant:m-1", limit) for _ in range(3)] == [None, None, None]
        wait = buckets.take("merchant:m-1", limit)
        assert wait == pytest.approx(0.5)
        assert retry_after_header(wait) == "1"
        assert buckets.take("merchant:m-2", limit) is None, "buckets are per caller"
        now[0] += 0.5
        assert buckets.take("merchant:m-1", limit) is None


class TestScope:
    def _principal(self, role: Role, **kw: Any) -> Principal:
        return Principal(role=role, subject="x", **kw)

    def test_each_role_sees_only_its_own(self):
        owners = {"merchant_id": "m-1", "team": "logistics", "storefront_id": "sf-1"}
        assert can_see(self._principal(Role.ADMIN), **owners)
        assert can_see(self._principal(Role.MERCHANT, merchant_id="m-1"), **owners)
        assert not can_see(self._principal(Role.MERCHANT, merchant_id="m-2"), **owners)
        assert can_see(self._principal(Role.STOREFRONT, storefront_id="sf-1"), **owners)
        assert not can_see(self._principal(Role.STOREFRONT, storefront_id="sf-2"), **owners)
        agent = self._principal(Role.AGENT, teams=frozenset({"logistics"}))
        assert can_see(agent, **owners)
        assert not can_see(self._principal(Role.SUPERVISOR, teams=frozenset({"x"})), **owners)

    def test_unknown_owners_are_visible_to_admins_only(self):
        assert not can_see(self._principal(Role.MERCHANT, merchant_id="m-1"))
        assert not can_see(self._principal(Role.STOREFRONT, storefront_id="sf-1"))
        assert can_see(self._principal(Role.ADMIN))

    def test_a_storefront_naming_a_customer_sees_only_that_customers_complaints(self):
        acting = self._principal(Role.STOREFRONT, storefront_id="sf-1", customer_id="c-1")
        assert can_see(acting, storefront_id="sf-1", customer_id="c-1")
        assert not can_see(acting, storefront_id="sf-1", customer_id="c-2")


@pytest.mark.parametrize("package", SERVICE_APPS)
def test_every_route_declares_the_roles_it_admits(package: str):
    app = importlib.import_module(f"{package}.main").app
    undeclared = [
        route.path
        for route in api_routes(app)
        if route_roles(route) is None and route.path not in ANONYMOUS_PATHS | OPERATIONS_PATHS
    ]
    assert not undeclared, f"{package}: routes without allow(): {undeclared}"


def test_a_route_without_a_declaration_is_caught():
    app = FastAPI()

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    @app.get("/v1/declared")
    async def declared(_: Principal = Depends(allow(Role.ADMIN))) -> dict[str, str]:
        return {}

    roles = {route.path: route_roles(route) for route in api_routes(app)}
    assert roles["/v1/forgotten"] is None
    assert roles["/v1/declared"] == frozenset({Role.ADMIN})


class TestBodyLimit:
    def _app(self) -> FastAPI:
        app = FastAPI()
        install_problem_handlers(app)
        app.add_middleware(BodyLimitMiddleware, max_body_bytes=1024)

        @app.post("/echo")
        async def echo(body: dict[str, Any]) -> dict[str, int]:
            return {"keys": len(body)}

        return app

    async def test_a_declared_length_over_the_limit_is_413_problem(self):
        transport = httpx.ASGITransport(app=self._app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            big = await client.post("/echo", content=b"{" + b" " * 5000 + b"}")
            small = await client.post("/echo", json={"a": 1})
        assert big.status_code == 413
        assert big.headers["content-type"] == "application/problem+json"
        assert small.status_code == 200

    async def test_a_streamed_body_over_the_limit_is_413_problem(self):
        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 512

        transport = httpx.ASGITransport(app=self._app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/echo", content=chunks(), headers={"content-type": "application/json"}
            )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"

    async def test_a_path_prefix_may_have_its_own_larger_limit_and_keeps_the_413(self):
        app = FastAPI()
        install_problem_handlers(app)
        app.add_middleware(BodyLimitMiddleware, max_body_bytes=1024, path_limits={"/files": 8192})

        @app.post("/files/{name}")
        @app.post("/filesystem")
        async def take(request: Request) -> dict[str, int]:
            return {"bytes": len(await request.body())}

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            under_prefix = await client.post("/files/a", content=b"x" * 5000)
            over_prefix = await client.post("/files/a", content=b"x" * 9000)
            # Only whole path segments match: /filesystem keeps the default limit.
            elsewhere = await client.post("/filesystem", content=b"x" * 5000)
        assert under_prefix.json() == {"bytes": 5000}
        assert (over_prefix.status_code, elsewhere.status_code) == (413, 413)
        assert over_prefix.headers["content-type"] == "application/problem+json"
        assert "8192" in over_prefix.json()["detail"]


def test_each_kafka_principal_writes_only_its_own_topics_and_reads_only_its_subscriptions():
    from services.catalog import CATALOG
    from services.kafka_acls import service_acls
    from shared.events.topics import dlq_topic

    for entry in CATALOG:
        acls = service_acls(entry)
        assert {acl.principal for acl in acls} == {f"User:{entry.name}"}
        written = {acl.name for acl in acls if acl.operation == "Write"}
        read = {acl.name for acl in acls if acl.operation == "Read" and acl.resource == "topic"}
        assert written == {str(t) for t in entry.topics_out} | {
            dlq_topic(str(t)) for t in entry.topics_in
        }
        assert read == {str(t) for t in entry.topics_in}
        assert not {acl.operation for acl in acls} & {"All", "Create", "Delete", "Alter"}


async def test_metrics_need_an_admin_when_operations_are_protected():
    from types import SimpleNamespace

    from shared.auth.access import Access
    from shared.auth.app import operations_guard
    from shared.web import operations_router

    async def no_gauges() -> None:
        return None

    app = FastAPI()
    install_problem_handlers(app)
    app.state.access = Access(schema="intake", sessionmaker=None, settings=AuthSettings())  # type: ignore[arg-type]
    app.state.runtime = SimpleNamespace(refresh_gauges=no_gauges)
    app.include_router(operations_router(metrics_guard=operations_guard(True)))
    admin, _ = issue_token(AuthSettings(), username="root", role=Role.ADMIN, teams=frozenset())
    agent, _ = issue_token(AuthSettings(), username="al", role=Role.AGENT, teams=frozenset())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        anonymous = await client.get("/metrics")
        as_agent = await client.get("/metrics", headers={"Authorization": f"Bearer {agent}"})
        as_admin = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert as_agent.status_code == 403
    assert as_admin.status_code == 200


@pytest.fixture
def restore_logging() -> Any:
    """Building an app configures logging for a service process; put the test's back."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_production_apps_keep_docs_and_metrics_for_admins_and_probes_open(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
):
    from shared.auth.settings import get_auth_settings
    from shared.runtime import create_service_app
    from triage_service.config import Settings as TriageSettings
    from triage_service.main import SPEC

    secret = "production-secret-" + "q" * 40
    monkeypatch.setenv("AUTH_JWT_SECRET", secret)
    get_auth_settings.cache_clear()
    try:
        app = create_service_app(
            SPEC,
            TriageSettings(
                environment="production",
                database_url="postgresql+asyncpg://triage:secret@db.example/complaints",
                kafka_security_protocol="SASL_SSL",
            ),
        )
    finally:
        get_auth_settings.cache_clear()
    admin, _ = issue_token(
        AuthSettings(jwt_secret=secret), username="root", role=Role.ADMIN, teams=frozenset()
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/docs", "/openapi.json", "/metrics"):
            assert (await client.get(path)).status_code == 401, path
        as_admin = await client.get("/openapi.json", headers={"Authorization": f"Bearer {admin}"})
        assert as_admin.status_code == 200
        assert "BearerToken" in as_admin.json()["components"]["securitySchemes"]
        assert (await client.get("/healthz")).status_code == 200


def test_production_refuses_to_build_an_app_with_the_development_token_secret(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
):
    from shared.auth.settings import get_auth_settings
    from shared.runtime import create_service_app
    from triage_service.config import Settings as TriageSettings
    from triage_service.main import SPEC

    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    get_auth_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
            create_service_app(
                SPEC,
                TriageSettings(
                    environment="production",
                    database_url="postgresql+asyncpg://triage:secret@db.example/complaints",
                    kafka_security_protocol="SASL_SSL",
                ),
            )
    finally:
        get_auth_settings.cache_clear()


async def test_wrong_credentials_from_one_address_are_slowed_down_and_missing_ones_are_not():
    from shared.auth.access import Access

    app = FastAPI()
    install_problem_handlers(app)
    settings = AuthSettings(failed_auth_limit=RateLimit(per_second=0.01, burst=3))
    app.state.access = Access(schema="intake", sessionmaker=None, settings=settings)  # type: ignore[arg-type]

    @app.get("/v1/thing")
    async def thing(_: Principal = Depends(allow(Role.ADMIN))) -> dict[str, str]:
        return {}

    forged, _ = issue_token(
        AuthSettings(jwt_secret="x" * 40), username="m", role=Role.ADMIN, teams=frozenset()
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = [(await client.get("/v1/thing")).status_code for _ in range(5)]
        wrong = [
            (await client.get("/v1/thing", headers={"Authorization": f"Bearer {forged}"}))
            for _ in range(5)
        ]
    assert missing == [401] * 5
    assert [r.status_code for r in wrong] == [401, 401, 401, 429, 429]
    assert int(wrong[-1].headers["retry-after"]) >= 1
