"""Rate limits per logged-in user and per client address, and of logins per address: `limits`'
fixed windows in this process's memory. A request over one answers 429 with `Retry-After`,
the seconds until its window ends."""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import credentials
from geo.errors import Unauthorized
from geo.identity import tokens
from geo.settings import Settings

# Answered to anyone, however often: a load balancer's probe and the pages' hashed assets.
EXEMPT = ("/health",)
EXEMPT_PREFIXES = ("/static/",)
_STATE = "rate_limits"  # where the routers find the counters (the login limit)
_USERS_MAX = 10_000


@dataclass(frozen=True)
class Refusal:
    """A request over a limit: which one, and when to try again."""

    what: str  # "requests for this user", "logins from this address"
    limit: str  # in words: "600 per 1 minute"
    retry_after_s: int

    @property
    def detail(self) -> str:
        """Return the refusal in words a person can act on."""
        return f"too many {self.what}: at most {self.limit}; try again in {self.retry_after_s} s"


Rule = tuple[str, list[RateLimitItem], tuple[str, ...]]  # what, limits, key


def client_key(scope: Scope) -> str | None:
    """Return the address a request is counted under: IPv4 as is, IPv6 by its /64 (a host
    holds the whole /64 and may send from any address in it), a name (a test client) as is."""
    client = scope.get("client")
    host = client[0] if client else None
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a dual-stack socket's IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


class Limits:
    """One app's counters (per user, per client address, logins) in one memory store."""

    def __init__(self, settings: Settings) -> None:
        rates = settings.rates
        self.per_user = parse_many(rates.per_user)
        self.per_client = parse_many(rates.per_client)
        self.login = parse_many(rates.login)
        self.token_cache_s = settings.auth.token_cache_s
        # Fixed windows (each starts at its key's first request): `limits`' memory store sweeps
        # every key each 10 ms, measured at 5,000 keys 3.9 ms a sweep for fixed windows and
        # 37 ms for moving ones (a timestamp per request), the GIL taken from the requests.
        self._window = FixedWindowRateLimiter(MemoryStorage())
        # Token digest → its user's key, learned from the token cache so that every token of
        # a user counts under one key even after its cache entry has expired.
        self._users: dict[str, str] = {}

    def take(self, rules: list[Rule]) -> Refusal | None:
        """Count one request under every rule; when one is full, count nothing and return it."""
        for what, items, key in rules:
            for item in items:
                if not self._window.test(item, *key):
                    reset = self._window.get_window_stats(item, *key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    return Refusal(what, str(item), wait)
        for _, items, key in rules:
            for item in items:
                self._window.hit(item, *key)
        return None

    def user_key(self, digest: str) -> str:
        """Return the key a token's requests count under: its user's once known, else the
        token's digest (never the token itself)."""
        return self._users.get(digest) or f"token:{digest}"

    def learn(self, token: str, digest: str) -> None:
        """After the app has checked a token new to the limits, charge its request to its user
        (no database round trip: only this process's token cache is read)."""
        who = tokens.cached(token, self.token_cache_s)
        if who is None or who.user_id is None:
            return  # not valid, or a route that asked for no login
        if len(self._users) >= _USERS_MAX:
            self._users.clear()
        key = self._users[digest] = f"user:{who.user_id}"
        for item in self.per_user:
            self._window.hit(item, key)


def _token(scope: Scope) -> str | None:
    try:
        token, _ = credentials(Request(scope))
    except Unauthorized:  # a malformed Authorization header: the route answers 401
        return None
    return token


async def _refuse(refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"Retry-After": str(refusal.retry_after_s)}
    await JSONResponse({"detail": refusal.detail}, 429, headers)(scope, receive, send)


class RateLimit:
    """Pure ASGI middleware: every request but `/health` and `/static` counts against its
    client address and, with a token or session cookie, against its user."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limits = Limits(settings) if settings.rates.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        limits = self.limits
        if (
            limits is None
            or scope["type"] != "http"
            or path in EXEMPT
            or path.startswith(EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})[_STATE] = limits
        rules: list[Rule] = []
        client = client_key(scope)
        if client is not None:  # no address (a unix socket without a proxy): no shared key
            rules.append(("requests from this address", limits.per_client, ("client", client)))
        token = _token(scope)
        digest = tokens.digest(token) if token else None
        user = limits.user_key(digest) if digest else None
        if user is not None:
            rules.append(("requests for this user", limits.per_user, (user,)))
        refusal = limits.take(rules)
        if refusal is not None:
            await _refuse(refusal, scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if token and digest and user and user.startswith("token:"):
                limits.learn(token, digest)


def login_refusal(request: Request) -> Refusal | None:
    """Count a login attempt against the login limit of its address; return the refusal when
    the address is over it (None also when rate limits are off)."""
    limits: Limits | None = getattr(request.state, _STATE, None)
    client = client_key(request.scope)
    if limits is None or client is None:
        return None
    return limits.take([("logins from this address", limits.login, ("login", client))])
