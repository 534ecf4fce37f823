"""Soak benchmark: the flood-weekend storm of phones, then a server killed mid-batch.

`python -m bench.soak [--phones 200] [--seconds 60] [--compare 32] [--workers N]`. On a
throwaway demo database, the server started with the rate limits off
(`RISKGRID_RATES__ENABLED=false`: this measures throughput, not the limiter):
- a storm: each phone, a grid worker with their own session token and connection, sends flood
  reports back to back, each with a client-made UUID and its own Idempotency-Key. A third of
  the attempts give up after 2-80 ms and cut the connection (a weak signal); the phone then
  retries with the same id and key, as it does after a connection error, a 429 or 503
  (honouring Retry-After) or another 5xx. Acknowledged means the phone saw a 200 or 201;
- `--compare` phones (32) first, then `--phones`, for the same time against the same server:
  the ratio of their throughputs says whether over-subscription collapses it;
- the database afterwards: every acknowledged report stored exactly once under its key, no
  report stored twice under another id (each report's description is unique), nothing stored
  that no phone sent;
- a batch of 1,000 reports (offline sync), the server's process group SIGKILLed once 40 % of
  them are stored, the server started again and the same batch replayed: every item is
  stored exactly once, and the replay says which were stored before the kill.

The phones are asyncio tasks on uvloop, each with one `bench.common.HttpConnection`
(asyncio streams, answers parsed by httptools' C parser): measured on this 2-core machine,
~0.2 ms of CPU per request against ~1.3 ms for httpx.AsyncClient, which at ~900 requests/s
would take more than one of the two cores from the server. The load generator's own CPU share
is printed with each storm, to show it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httptools
import orjson
import psycopg
import uvloop

from bench.common import (
    RESULTS,
    Bench,
    HttpConnection,
    bench_database,
    free_port,
    kill_server,
    ms,
    spawn_server,
    worker_tokens,
)

SERVER_ENV = {"RISKGRID_RATES__ENABLED": "false"}
CATEGORIES = ("waterlogging", "embankment", "drainage_blocked", "river_bank")
CUT_SHARE = 1 / 3  # of attempts, with a client timeout of CUT_S
CUT_S = (0.002, 0.080)
PATIENCE_S = 30.0  # an attempt without a cut waits this long for its answer
DRAIN_S = 30.0  # after the storm, reports in flight are retried this long before giving up
WARM_UP_S = 5.0  # 32 phones first, not measured: the server's own warm-up runs meanwhile
POINTS_PER_GRID = 512
BATCH = 1000
KILL_AT = 0.4  # share of the batch stored when the server is killed

Point = tuple[float, float]


@dataclass
class Tally:
    """What the phones of one storm saw."""

    phones: int
    seconds: float
    label: str
    sent: dict[uuid.UUID, str] = field(default_factory=dict)  # every report made: id -> key
    acked: dict[uuid.UUID, str] = field(default_factory=dict)
    in_time: int = 0  # acknowledged before the storm's end
    attempt_s: list[float] = field(default_factory=list)  # the attempt that was acknowledged
    report_s: list[float] = field(default_factory=list)  # first send to acknowledgement
    attempts: int = 0
    statuses: Counter = field(default_factory=Counter)
    cuts: int = 0
    stalls: int = 0  # attempts past PATIENCE_S without an answer
    conn_errors: int = 0
    wrong_answers: int = 0  # a 200/201 naming another report
    refused: Counter = field(default_factory=Counter)  # 4xx but 429: not retried
    refusal_details: list[str] = field(default_factory=list)
    gave_up: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


class Phone:
    """One grid worker's phone: a session token, a connection, points in the worker's grid."""

    def __init__(self, n: int, port: int, token: str, points: list[Point], tally: Tally, tag: str):
        self.conn = HttpConnection(port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.points = points
        self.tally = tally
        self.tag = f"{tag} phone {n}"
        self.rng = random.Random(n)
        self.seq = 0

    def report(self) -> tuple[uuid.UUID, str, bytes]:
        """Return a new report: (client id, Idempotency-Key, JSON body)."""
        self.seq += 1
        rid = uuid.uuid4()
        body = flood_report(rid, self.rng.choice(self.points), self.rng, f"{self.tag} #{self.seq}")
        return rid, str(uuid.uuid4()), orjson.dumps(body)

    async def run(self, end: float, give_up_at: float) -> None:
        """Send reports one after the other until `end`; retry the last one until acknowledged."""
        loop = asyncio.get_running_loop()
        while loop.time() < end:
            rid, key, body = self.report()
            self.tally.sent[rid] = key
            await self.deliver(rid, key, body, end, give_up_at)
        self.conn.close()

    async def deliver(
        self, rid: uuid.UUID, key: str, body: bytes, end: float, give_up_at: float
    ) -> None:
        """Send one report, again with the same id and key, until it is acknowledged."""
        loop = asyncio.get_running_loop()
        first = loop.time()
        headers = {**self.headers, "Idempotency-Key": key}
        for attempt in itertools.count(1):
            status, retry_after, answer, took = await self.send(headers, body)
            now = loop.time()
            if status in (200, 201):
                self.acknowledge(rid, key, answer, took, now - first, now < end)
                return
            if status is not None and status < 500 and status != 429:
                self.tally.refused[status] += 1
                if len(self.tally.refusal_details) < 5:
                    self.tally.refusal_details.append(f"{status} {answer[:200].decode()}")
                return
            # Full jitter: 200 phones cut at once must not come back at once.
            wait = self.rng.uniform(0, min(2.0, 0.025 * 2**attempt))
            if retry_after is not None:
                wait = retry_after * (1 + 0.5 * self.rng.random())
            if now + wait > give_up_at:
                self.tally.gave_up += 1
                return
            await asyncio.sleep(wait)

    async def send(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, float | None, bytes, float]:
        """Make one attempt; return (status or None, Retry-After seconds, body, seconds)."""
        t = self.tally
        t.attempts += 1
        cut = self.rng.random() < CUT_SHARE
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.rng.uniform(*CUT_S) if cut else PATIENCE_S):
                status, head, answer = await self.conn.request(
                    "POST", "/api/v1/reports", headers, body
                )
        except TimeoutError:
            t.cuts += cut
            t.stalls += not cut
            return None, None, b"", 0.0
        except (OSError, httptools.HttpParserError):
            t.conn_errors += 1
            return None, None, b"", 0.0
        took = time.perf_counter() - t0
        t.statuses[status] += 1
        return status, _retry_after(head) if status in (429, 503) else None, answer, took

    def acknowledge(
        self, rid: uuid.UUID, key: str, answer: bytes, took: float, waited: float, in_time: bool
    ) -> None:
        """Count a 200/201 for the report `rid`."""
        t = self.tally
        t.acked[rid] = key
        t.wrong_answers += orjson.loads(answer).get("id") != str(rid)
        t.in_time += in_time
        t.attempt_s.append(took)
        t.report_s.append(waited)


def _retry_after(head: dict[bytes, bytes]) -> float | None:
    try:
        return float(head[b"retry-after"])
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: back off as after a cut


def flood_report(rid: uuid.UUID, point: Point, rng: random.Random, description: str) -> dict:
    """Return the body of a flood report made on a phone now."""
    return {
        "id": str(rid),
        "lon": point[0],
        "lat": point[1],
        "accuracy_m": round(rng.uniform(5, 30), 1),
        "theme": "flood",
        "category": rng.choice(CATEGORIES),
        "severity": rng.randint(1, 4),
        "description": description,
        "reported_at": datetime.now(UTC).isoformat(),
    }


async def storm(
    port: int, phones: list[tuple[str, list[Point]]], seconds: float, tag: str
) -> Tally:
    """Run the phones against the server for `seconds` (then drain); return what they saw."""
    tally = Tally(len(phones), seconds, tag.rsplit(" ", 1)[-1])
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(
        *(
            Phone(i, port, token, pts, tally, tag).run(end, end + DRAIN_S)
            for i, (token, pts) in enumerate(phones)
        )
    )
    tally.cpu_s, tally.wall_s = time.process_time() - cpu, time.perf_counter() - wall
    return tally


def stored(conn: psycopg.Connection, acked: dict[uuid.UUID, str], sent: list, like: str) -> dict:
    """Check the database against what the phones saw (reports tagged `like`)."""
    ids = list(acked)
    found, wrong_key = conn.execute(
        """
        SELECT count(r.id), count(r.id) FILTER (WHERE r.idempotency_key IS DISTINCT FROM a.k)
        FROM unnest(%s::uuid[], %s::text[]) AS a(id, k) LEFT JOIN reports r ON r.id = a.id
        """,
        (ids, [acked[i] for i in ids]),
    ).fetchone()
    rows, distinct, phantoms = conn.execute(
        """
        SELECT count(*), count(DISTINCT r.description),
               count(*) FILTER (WHERE NOT EXISTS (SELECT FROM unnest(%s::uuid[]) s(id)
                                                  WHERE s.id = r.id))
        FROM reports r WHERE r.description LIKE %s
        """,
        (sent, like),
    ).fetchone()
    return {
        "acknowledged": len(ids),
        "stored": found,
        "lost": len(ids) - found,
        "wrong_key": wrong_key,
        "duplicates": rows - distinct,
        "phantoms": phantoms,
        "unacknowledged_stored": rows - found - phantoms,
    }


def summary(t: Tally, check: dict) -> dict:
    """Return one storm's figures, with the database's check of it."""
    fives = {str(s): n for s, n in sorted(t.statuses.items()) if s >= 500}
    return {
        "label": t.label,
        "phones": t.phones,
        "seconds": t.seconds,
        "acked_per_s": t.in_time / t.seconds,
        "attempt_p50_ms": ms(t.attempt_s, 50) if t.attempt_s else None,
        "attempt_p99_ms": ms(t.attempt_s, 99) if t.attempt_s else None,
        "report_p50_ms": ms(t.report_s, 50) if t.report_s else None,
        "report_p99_ms": ms(t.report_s, 99) if t.report_s else None,
        "reports": len(t.sent),
        "attempts": t.attempts,
        "attempts_per_report": t.attempts / max(1, len(t.sent)),
        "statuses": {str(s): n for s, n in sorted(t.statuses.items())},
        "5xx": sum(fives.values()),
        "5xx_by_status": fives,
        "429": t.statuses[429],
        "cuts": t.cuts,
        "stalls": t.stalls,
        "conn_errors": t.conn_errors,
        "refused": dict(t.refused),
        "refusal_details": t.refusal_details,
        "gave_up": t.gave_up,
        "wrong_answers": t.wrong_answers,
        "client_cpu_share_of_a_core": t.cpu_s / t.wall_s,
        "client_cpu_us_per_attempt": 1e6 * t.cpu_s / max(1, t.attempts),
        **check,
    }


def _points(b: Bench, codes: list[str]) -> dict[str, list[Point]]:
    """Return random points inside each of the grids `codes`."""
    with psycopg.connect(**b.dsn()) as conn:
        rows = conn.execute(
            """
            SELECT code, ST_X(p), ST_Y(p) FROM (
              SELECT code, (ST_Dump(ST_GeneratePoints(geom, %s, 13))).geom AS p
              FROM grids WHERE code = ANY(%s)) s
            """,
            (POINTS_PER_GRID, codes),
        ).fetchall()
    out: dict[str, list[Point]] = {c: [] for c in codes}
    for code, lon, lat in rows:
        out[code].append((lon, lat))
    return out


def _post_batch(port: int, token: str, key: str, body: bytes) -> tuple[int | None, dict | str]:
    """POST the batch; return (status, answer), or (None, the error) when the server died."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    try:
        c.request("POST", "/api/v1/reports:batch", body, headers)
        r = c.getresponse()
        return r.status, orjson.loads(r.read())
    except (OSError, http.client.HTTPException) as exc:
        return None, type(exc).__name__
    finally:
        c.close()


def _count(conn: psycopg.Connection, ids: list[uuid.UUID]) -> int:
    return conn.execute("SELECT count(*) FROM reports WHERE id = ANY(%s)", (ids,)).fetchone()[0]


def _wait(conn: psycopg.Connection, sql: str, args: tuple, done, what: str) -> int:
    """Poll `sql` (one number) every 10 ms until `done(number)`; return the number."""
    deadline = time.monotonic() + 60
    while not done(n := conn.execute(sql, args).fetchone()[0]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited 60 s for {what}")
        time.sleep(0.01)
    return n


def _batch(phone: tuple[str, list[Point]], tag: str) -> tuple[list[uuid.UUID], str, bytes]:
    """Return a phone's offline outbox: (ids, batch Idempotency-Key, body)."""
    rng = random.Random(BATCH)
    ids = [uuid.uuid4() for _ in range(BATCH)]
    items = [flood_report(i, rng.choice(phone[1]), rng, f"{tag} #{n}") for n, i in enumerate(ids)]
    return ids, str(uuid.uuid4()), orjson.dumps({"reports": items})


def kill_and_replay(
    b: Bench, port: int, workers: int | None, proc: subprocess.Popen, phone, tag: str
) -> tuple[dict, subprocess.Popen]:
    """Kill the server mid-batch, start it again, replay; return (figures, the new server)."""
    ids, key, body = _batch(phone, tag)
    first: list = []
    sender = threading.Thread(target=lambda: first.append(_post_batch(port, phone[0], key, body)))
    with psycopg.connect(**b.dsn(), autocommit=True) as conn:
        sender.start()
        count = "SELECT count(*) FROM reports WHERE id = ANY(%s)"
        _wait(conn, count, (ids,), lambda n: n >= BATCH * KILL_AT or first, "the batch")
        kill_server(proc)
        sender.join()
        # A killed server's sessions end when PostgreSQL notices: only then is the count final.
        others = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        _wait(conn, others, (), lambda n: n == 0, "the killed server's sessions to end")
        before = _count(conn, ids)
        t0 = time.perf_counter()
        proc = spawn_server({**b.env, **SERVER_ENV}, port, workers)
        restart_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        status, answer = _post_batch(port, phone[0], key, body)
        replay_s = time.perf_counter() - t0
        acked = {i: f"{key}:{n}" for n, i in enumerate(ids)}
        check = stored(conn, acked, ids, f"{tag} #%")
    return _kill_figures(ids, first[0], before, restart_s, status, answer, replay_s, check), proc


def _kill_figures(ids, first, before, restart_s, status, answer, replay_s, check) -> dict:
    results = answer.get("results", []) if isinstance(answer, dict) else []
    return {
        "batch": len(ids),
        "first_send": first[1] if first[0] is None else f"HTTP {first[0]} (finished before kill)",
        "stored_before_kill": before,
        "mid_batch": 0 < before < len(ids),
        "restart_s": restart_s,
        "replay_status": status,
        "replay_s": replay_s,
        "replay_created": answer.get("created") if isinstance(answer, dict) else None,
        "replay_replayed": answer.get("replayed") if isinstance(answer, dict) else None,
        "replay_failed": answer.get("failed") if isinstance(answer, dict) else None,
        "replayed_equals_stored_before": isinstance(answer, dict)
        and answer.get("replayed") == before,
        "answers_naming_their_item": sum(
            r.get("report", {}).get("id") == str(ids[r["index"]]) for r in results
        ),
        **check,
    }


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--phones", type=int, default=200, help="phones in the storm")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each storm")
    p.add_argument(
        "--compare", type=int, default=32, help="phones of the storm run first (0: none)"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="server processes (default: the settings')"
    )
    return p.parse_args()


def main() -> dict:
    args = _args()
    run = f"soak {uuid.uuid4().hex[:8]}"
    sizes = ([args.compare] if args.compare else []) + [args.phones]
    plan = [("warm-up", 32, min(WARM_UP_S, args.seconds))]
    plan += [(f"phase{i}", n, args.seconds) for i, n in enumerate(sizes)]
    with bench_database() as b:
        tokens = worker_tokens(b.cluster.url(), max(n for _, n, _ in plan))
        points = _points(b, [code for _, code in tokens])
        phones = [(token, points[code]) for token, code in tokens]
        port = free_port()
        proc = spawn_server({**b.env, **SERVER_ENV}, port, args.workers)
        try:
            tallies = [
                uvloop.run(storm(port, phones[:n], s, f"{run} {label}")) for label, n, s in plan
            ]
            kill, proc = kill_and_replay(b, port, args.workers, proc, phones[0], f"{run} batch")
        finally:
            kill_server(proc, signal.SIGTERM)
        with psycopg.connect(**b.dsn()) as conn:
            phases = [
                summary(t, stored(conn, t.acked, list(t.sent), f"{run} {t.label} %"))
                for t in tallies
            ]
    out = {
        "workers": args.workers or "default",
        "rate_limits": "off (RISKGRID_RATES__ENABLED=false)",
        "client": "asyncio on uvloop, one HttpConnection (httptools) per phone",
        "phases": phases,
        "kill": kill,
    }
    if args.compare:
        out["ratio_phones_to_compare"] = phases[2]["acked_per_s"] / phases[1]["acked_per_s"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    print(f"server workers: {r['workers']}; rate limits {r['rate_limits']}; client {r['client']}")
    head = (
        f"{'storm':>8} {'phones':>6} {'acked/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'rep p99':>8} "
        f"{'tries/rep':>9} {'cuts':>6} {'503':>6} {'429':>5} {'5xx':>6} {'conn':>5} "
        f"{'lost':>5} {'dupes':>5} {'4xx':>4} {'cpu':>5}"
    )
    print(head)
    for p in r["phases"]:
        print(
            f"{p['label']:>8} {p['phones']:>6} {p['acked_per_s']:>8.0f} "
            f"{p['attempt_p50_ms'] or 0:>7.1f} {p['attempt_p99_ms'] or 0:>7.1f} "
            f"{p['report_p99_ms'] or 0:>8.0f} {p['attempts_per_report']:>9.2f} {p['cuts']:>6} "
            f"{p['statuses'].get('503', 0):>6} {p['429']:>5} {p['5xx']:>6} "
            f"{p['conn_errors']:>5} {p['lost']:>5} {p['duplicates']:>5} "
            f"{sum(p['refused'].values()):>4} {p['client_cpu_share_of_a_core']:>5.0%}"
        )
        for d in p["refusal_details"]:
            print(f"{'':>9}refused: {d}")
    other = ("wrong_key", "phantoms", "wrong_answers", "unacknowledged_stored", "gave_up", "stalls")
    print("all storms: " + ", ".join(f"{k} {sum(p[k] for p in r['phases'])}" for k in other))
    if "ratio_phones_to_compare" in r:
        a, z = r["phases"][1], r["phases"][2]
        print(
            f"throughput at {z['phones']} phones / at {a['phones']}: "
            f"{r['ratio_phones_to_compare']:.2f} (goal >= 0.8)"
        )
    k = r["kill"]
    print(
        f"kill: batch of {k['batch']}, server SIGKILLed with {k['stored_before_kill']} stored "
        f"(first send: {k['first_send']}); restarted in {k['restart_s']:.1f} s; replay HTTP "
        f"{k['replay_status']} in {k['replay_s']:.1f} s: {k['replay_replayed']} replayed + "
        f"{k['replay_created']} created, {k['replay_failed']} failed, "
        f"{k['answers_naming_their_item']} answers naming their item"
    )
    print(
        f"      stored {k['stored']}, lost {k['lost']}, duplicates {k['duplicates']}, wrong keys "
        f"{k['wrong_key']}, mid-batch {'yes' if k['mid_batch'] else 'NO'}, replayed = stored "
        f"before the kill: {'yes' if k['replayed_equals_stored_before'] else 'NO'}"
    )


if __name__ == "__main__":
    _print(main())
