"""Risk letter benchmark: a letter drafted from the analysis of a department's remit and
rendered to PDF, on the demo, over HTTP to one `riskgrid serve` process.

`python -m bench.letters`. A round is `POST /api/v1/letters` (figures, Gi*, the emerging
trend, open reports with their ages, the map) then `GET …?format=pdf`. Cold rounds follow a new
report, so the statistics are computed anew (the data version moved); warm rounds find them
cached. GET /api/v1/auth/me is timed in the same run as the baseline, and the server's own CPU
time per letter (its statistics process included) is read from /proc: on a shared machine the
wall time follows the load, the CPU time much less. The issue's target: a letter drafted and
rendered to PDF < 3 s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import time
import uuid
from pathlib import Path

import psycopg

from bench.common import NEW_REPORT, RESULTS, bench_database, ms, role_token, server

HOUSING = "住房和城乡建设局"
ROUNDS = 5
ME_ROUNDS = 40


def _request(c: http.client.HTTPConnection, method: str, path: str, token: str, body=None):
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    t0 = time.perf_counter()
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    answer = r.read()
    if r.status not in (200, 201):
        raise RuntimeError(f"{method} {path}: HTTP {r.status} {answer[:300]!r}")
    return time.perf_counter() - t0, answer


def _letter(c: http.client.HTTPConnection, token: str, body: dict, session: int) -> dict:
    cpu0 = _cpu_s(session)
    draft_s, answer = _request(c, "POST", "/api/v1/letters", token, body)
    url = json.loads(answer)["url"]
    pdf_s, pdf = _request(c, "GET", f"{url}?format=pdf", token)
    return {
        "draft": draft_s,
        "pdf": pdf_s,
        "total": draft_s + pdf_s,
        "cpu": _cpu_s(session) - cpu0,
        "bytes": len(pdf),
    }


def _server_session(port: int) -> int:
    """Return the session id of the `riskgrid serve` process on `port` (its process group:
    its workers and statistics processes)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"serve" in args and str(port).encode() in args:
                return int(proc.name)
    raise RuntimeError(f"no riskgrid serve process on port {port}")


def _cpu_s(session: int) -> float:
    """Return the CPU seconds (user + system) the processes of a session have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:  # field 6, the session id, after pid and comm
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _period(b) -> dict:
    with psycopg.connect(**b.dsn()) as conn:
        lo, hi = conn.execute(
            "SELECT min(reported_at), max(reported_at) FROM reports WHERE department = %s",
            (HOUSING,),
        ).fetchone()
    return {"since": lo.isoformat(), "until": hi.isoformat()}


def main() -> dict:
    with bench_database() as b:
        token = role_token(b.cluster.url(), "bench-desk", "dispatcher")
        body = {"department": HOUSING, **_period(b)}
        with server(b) as port:
            session = _server_session(port)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            me = [_request(c, "GET", "/api/v1/auth/me", token)[0] for _ in range(ME_ROUNDS)][3:]
            # The first: the statistics process and WeasyPrint start.
            _letter(c, token, body, session)
            cold, warm = [], []
            for _ in range(ROUNDS):
                with psycopg.connect(**b.dsn()) as conn:
                    conn.execute(NEW_REPORT, (str(uuid.uuid4()),))
                cold.append(_letter(c, token, body, session))
                warm.append(_letter(c, token, body, session))
            c.close()
        load = os.getloadavg()[0]
    base = statistics.median(me)
    out = {
        "period": body,
        "load_average_1min": load,
        "auth_me_p50_ms": ms(me, 50),
        "pdf_bytes": cold[-1]["bytes"],
    }
    for name, rounds in (("cold", cold), ("warm", warm)):
        for part in ("draft", "pdf", "total"):
            t = [r[part] for r in rounds]
            out[f"{name}_{part}_p50_ms"] = ms(t, 50)
        out[f"{name}_total_max_ms"] = max(r["total"] for r in rounds) * 1000
        # The server's own CPU (its statistics process included): what the letter costs
        # whatever else the machine runs.
        out[f"{name}_cpu_p50_ms"] = statistics.median(r["cpu"] for r in rounds) * 1000
        out[f"{name}_total_ratio"] = statistics.median(r["total"] for r in rounds) / base
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "letters.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    print(
        f"GET /auth/me p50 {r['auth_me_p50_ms']:.1f} ms; PDF {r['pdf_bytes']:,} bytes; "
        f"load average {r['load_average_1min']:.1f}"
    )
    for name in ("cold", "warm"):
        print(
            f"{name}: draft p50 {r[name + '_draft_p50_ms']:.0f} ms + PDF "
            f"{r[name + '_pdf_p50_ms']:.0f} ms = {r[name + '_total_p50_ms']:.0f} ms "
            f"(max {r[name + '_total_max_ms']:.0f} ms) = {r[name + '_total_ratio']:.0f}x /auth/me; "
            f"server CPU p50 {r[name + '_cpu_p50_ms']:.0f} ms"
        )


if __name__ == "__main__":
    _print(main())
