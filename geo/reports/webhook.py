"""Delivery of outbox events to the webhook (a city's SMS or WeChat gateway): at least once,
signed, retried with backoff, every attempt in the delivery log.

One event at a time: claim it (`FOR UPDATE SKIP LOCKED`, so several server processes share the
work; the claim counts the attempt and leases the row), commit, POST it holding no database
connection, then record the attempt. A process that dies mid-send leaves the lease to run out:
the event is sent again. A receiver may so see an event twice; `X-Riskgrid-Event` (the event
id) makes the repeat detectable. 2xx is delivered; anything else, a refused connection or a
timeout is retried after an exponential backoff with jitter, up to `max_attempts`.

The receiver checks `X-Riskgrid-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared
secret of `X-Riskgrid-Timestamp` + "." + the body (`verify`), and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from sqlalchemy import Connection, Engine, text

from geo.settings import WebhookSettings

log = logging.getLogger("riskgrid.webhook")

EVENT_HEADER = "X-Riskgrid-Event"
SIGNATURE_HEADER = "X-Riskgrid-Signature"
TIMESTAMP_HEADER = "X-Riskgrid-Timestamp"
ATTEMPT_HEADER = "X-Riskgrid-Attempt"
PENDING = "delivered_at IS NULL AND gave_up_at IS NULL"  # the partial index ix_outbox_due

_EXPIRE = text(
    f"UPDATE outbox SET gave_up_at = now(), last_error = :why WHERE {PENDING} "
    "AND next_attempt_at <= now() AND created_at < now() - make_interval(secs => :age)"
)
_CLAIM = text(
    f"""
    WITH due AS (
      SELECT id FROM outbox WHERE {PENDING} AND next_attempt_at <= now()
      ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox o SET attempts = o.attempts + 1,
      next_attempt_at = now() + make_interval(secs => :lease)
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.event_id, o.attempts, o.payload
    """
)
_LOG = text(
    "INSERT INTO webhook_deliveries (outbox_id, attempt, url, status_code, error, duration_ms) "
    "VALUES (:id, :attempt, :url, :status, :error, :ms)"
)


@dataclass(frozen=True)
class Claimed:
    """An event claimed for one attempt: its row, the attempt's number, the body to send."""

    id: int
    event_id: uuid.UUID
    attempt: int
    body: bytes


@dataclass(frozen=True)
class Attempt:
    """What one POST gave: the status (None: no answer) or why it failed, and how long."""

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        """Whether the receiver took the event (a 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Round:
    """What one round of delivery did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    gave_up: int = 0
    expired: int = 0


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Return the signature header's value: `sha256=` and the hex HMAC of timestamp.body."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Return whether a received event is genuine: the signature matches (compared in constant
    time) and the timestamp is within `tolerance_s` of `now` (a replay is refused)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_delay_s(attempt: int, rules: WebhookSettings, rng: Callable[[], float]) -> float:
    """Return the wait after failed attempt `attempt` (1, 2, ...): `backoff_s` doubling, capped
    at `max_backoff_s`, of which the upper half is random ("equal jitter")."""
    # Half fixed, half random: events that failed together spread out, and the wait after
    # attempt n+1 is never shorter than after attempt n (until the cap).
    full = min(rules.max_backoff_s, rules.backoff_s * 2 ** min(attempt - 1, 60))
    return full / 2 + rng() * full / 2


def logged_url(url: str) -> str:
    """Return `url` without credentials, query or fragment, for the delivery log and messages
    (a gateway's key often rides in the query: WeChat Work's `?key=`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is a failure to deliver, not an invitation to send the event elsewhere.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _why(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    words = str(reason).strip() or type(reason).__name__
    return f"{type(reason).__name__}: {words}"[:300]


def post(url: str, secret: bytes, event: Claimed, timeout_s: float) -> Attempt:
    """POST one event, signed; return what came of it (never raises for network trouble)."""
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "riskgrid-webhook/1",
        EVENT_HEADER: str(event.event_id),
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(secret, stamp, event.body),
        ATTEMPT_HEADER: str(event.attempt),
    }
    # The scheme is http(s), checked in WebhookSettings.
    request = urllib.request.Request(url, event.body, headers, method="POST")  # noqa: S310
    start = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        with _OPENER.open(request, timeout=timeout_s) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:  # an answer, not 2xx (a 3xx too: not followed)
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"[:300]
        exc.close()
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, timeout
        error = _why(exc)
    return Attempt(status, error, (time.perf_counter() - start) * 1000)


def lease_s(rules: WebhookSettings) -> float:
    """Return how long a claim holds an event: past connect, send and answer timeouts."""
    return 3 * rules.timeout_s + 30


def expire(conn: Connection, rules: WebhookSettings) -> int:
    """Give up due events older than `max_age_s` unsent; return how many."""
    why = f"not sent: older than {rules.max_age_s:g} s when it could be sent"
    return conn.execute(_EXPIRE, {"age": rules.max_age_s, "why": why}).rowcount


def claim(conn: Connection, rules: WebhookSettings) -> Claimed | None:
    """Claim the next due event for one attempt (commit before sending); None when none is."""
    row = conn.execute(_CLAIM, {"lease": lease_s(rules)}).one_or_none()
    if row is None:
        return None
    # Sorted keys: every attempt of an event sends the same bytes.
    body = orjson.dumps(row.payload, option=orjson.OPT_SORT_KEYS)
    return Claimed(row.id, row.event_id, row.attempts, body)


def record(
    conn: Connection,
    event: Claimed,
    attempt: Attempt,
    url: str,
    rules: WebhookSettings,
    rng: Callable[[], float] = random.random,
) -> str:
    """Log the attempt to `url` and settle the event: 'delivered', 'retried' (due again after
    the backoff) or 'gave_up' (after `max_attempts`); return which."""
    conn.execute(
        _LOG,
        {
            "id": event.id,
            "attempt": event.attempt,
            "url": logged_url(url),
            "status": attempt.status_code,
            "error": attempt.error,
            "ms": round(attempt.duration_ms, 1),
        },
    )
    if attempt.delivered:
        conn.execute(
            text(
                "UPDATE outbox SET delivered_at = now(), last_error = NULL "
                "WHERE id = :id AND delivered_at IS NULL"
            ),
            {"id": event.id},
        )
        return "delivered"
    error = attempt.error or f"HTTP {attempt.status_code}"
    # A later claim (our lease ran out) owns the row now: leave its lease alone.
    mine = "WHERE id = :id AND attempts = :attempt AND delivered_at IS NULL"
    if event.attempt >= rules.max_attempts:
        sql = f"UPDATE outbox SET gave_up_at = now(), last_error = :e {mine}"
        outcome = "gave_up"
        log.warning("webhook: gave up event %s after %d attempts", event.event_id, event.attempt)
    else:
        sql = (
            "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => :wait), "
            f"last_error = :e {mine}"
        )
        outcome = "retried"
    wait = retry_delay_s(event.attempt, rules, rng)
    conn.execute(text(sql), {"id": event.id, "attempt": event.attempt, "e": error, "wait": wait})
    return outcome


def deliver_round(
    engine: Engine,
    rules: WebhookSettings,
    limit: int = 100,
    stop: threading.Event | None = None,
) -> Round:
    """Send up to `limit` due events, one at a time (no connection held while sending)."""
    if rules.url is None or rules.secret is None:
        raise ValueError("no webhook configured: set webhook.url and webhook.secret")
    url, secret = rules.url, rules.secret.get_secret_value().encode()
    done = Round()
    with engine.begin() as conn:
        done.expired = expire(conn, rules)
    while done.claimed < limit and not (stop is not None and stop.is_set()):
        with engine.begin() as conn:
            event = claim(conn, rules)
        if event is None:
            break
        done.claimed += 1
        attempt = post(url, secret, event, rules.timeout_s)
        with engine.begin() as conn:
            outcome = record(conn, event, attempt, url, rules)
        setattr(done, outcome, getattr(done, outcome) + 1)
        if not attempt.delivered:
            log.info(
                "webhook: event %s attempt %d: %s", event.event_id, event.attempt, attempt.error
            )
    return done


class Deliverer:
    """A thread that delivers due events every `poll_s` until stopped (one per server process
    when a webhook is configured; `riskgrid outbox deliver` runs the same loop)."""

    def __init__(self, engine: Engine, rules: WebhookSettings) -> None:
        self.engine = engine
        self.rules = rules
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="riskgrid-webhook", daemon=True)

    def start(self) -> Deliverer:
        """Start the thread; return self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to end after the event in hand, and wait up to `timeout_s` for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.rules.timeout_s * 3 + 5 if timeout_s is None else timeout_s)

    def run(self) -> None:
        """Deliver rounds until stopped; a round that found nothing waits `poll_s`."""
        failures = 0
        while not self._stop.is_set():
            try:
                done = deliver_round(self.engine, self.rules, stop=self._stop)
                failures = 0
            except Exception as exc:  # the database away: wait longer each time, up to 60 s
                failures += 1
                log.warning("webhook: delivery round failed: %s", type(exc).__name__)
                self._stop.wait(min(60.0, self.rules.poll_s * 2**failures))
                continue
            if done.claimed == 0:
                self._stop.wait(self.rules.poll_s)


def status(conn: Connection, errors: int = 5) -> dict:
    """Return the outbox's counts (pending, due now, delivered, gave up), the oldest pending
    event's age, and the last failed attempts."""
    counts = conn.execute(
        text(
            f"""
            SELECT count(*) FILTER (WHERE {PENDING}) AS pending,
                   count(*) FILTER (WHERE {PENDING} AND next_attempt_at <= now()) AS due,
                   count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
                   count(*) FILTER (WHERE gave_up_at IS NOT NULL) AS gave_up,
                   extract(epoch FROM now() - min(created_at) FILTER (WHERE {PENDING}))
                     AS oldest_pending_s
            FROM outbox
            """
        )
    ).one()
    failed = conn.execute(
        text(
            "SELECT d.at, o.event_id, o.kind, d.attempt, d.status_code, d.error, d.url "
            "FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id "
            "WHERE d.status_code IS NULL OR d.status_code NOT BETWEEN 200 AND 299 "
            "ORDER BY d.id DESC LIMIT :n"
        ),
        {"n": errors},
    ).all()
    oldest = counts.oldest_pending_s
    return {
        "pending": counts.pending,
        "due": counts.due,
        "delivered": counts.delivered,
        "gave_up": counts.gave_up,
        "oldest_pending_s": None if oldest is None else round(float(oldest), 1),
        "last_errors": [
            {
                "at": r.at,
                "event_id": str(r.event_id),
                "kind": r.kind,
                "attempt": r.attempt,
                "status_code": r.status_code,
                "error": r.error,
                "url": r.url,
            }
            for r in failed
        ],
    }
