"""Overdue reports: a notice when a stage's deadline passes, and escalation to the district's
dispatchers (and the 督办 queue) when it stays passed for `reports.escalate_after_h`.

Every server process runs the same sweep (`Sweeper`); rows are claimed with FOR UPDATE SKIP
LOCKED and stamped in the same statement, so each report is noticed and escalated once per
stage however many processes sweep. A move clears both stamps: the next stage starts afresh.
The same thread runs the sweeps of layers above (the letters' overdue replies,
`geo.letters.notices.sweep`), each in its own transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, text

from geo.identity.principal import SYSTEM
from geo.reports.notify import emit, event_key
from geo.settings import ReportSettings
from geo.vocabulary import OPEN_STATUSES, NotificationKind, ReportStatus, sql_list

S = ReportStatus
K = NotificationKind
OPEN = sql_list(OPEN_STATUSES)
BATCH = 500
# Whose turn it is in each open stage: the department's while it holds the task, else the desk's.
_DEPARTMENT_STAGES = (S.DISPATCHED, S.IN_PROGRESS)
log = logging.getLogger("riskgrid.escalation")
# A sweep: one transaction's work, and how many of each thing it did (BATCH: more to do).
Sweep = Callable[[Connection], dict[str, int]]

_NOTICE = text(
    f"""
    UPDATE reports r SET overdue_noticed_at = now()
    WHERE r.id IN (
      SELECT id FROM reports WHERE status IN {OPEN} AND due_at < now()
        AND overdue_noticed_at IS NULL
      ORDER BY due_at LIMIT :batch FOR UPDATE SKIP LOCKED)
    RETURNING r.id, r.status, r.department, r.handler_id, r.due_at
    """
)
_ESCALATE = text(
    f"""
    UPDATE reports r SET escalated_at = now()
    WHERE r.id IN (
      SELECT id FROM reports WHERE status IN {OPEN}
        AND due_at < now() - make_interval(secs => :after_s) AND escalated_at IS NULL
      ORDER BY due_at LIMIT :batch FOR UPDATE SKIP LOCKED)
    RETURNING r.id, r.due_at
    """
)


def sweep(conn: Connection, rules: ReportSettings) -> dict[str, int]:
    """Notice the reports newly overdue and escalate those overdue past the second limit, in
    the caller's transaction; return how many of each (at most BATCH a call)."""
    noticed = conn.execute(_NOTICE, {"batch": BATCH}).all()
    for r in noticed:
        theirs = r.status in _DEPARTMENT_STAGES
        emit(
            conn,
            K.OVERDUE,
            r.id,
            department=r.department if theirs else None,
            users=(r.handler_id,) if theirs and r.handler_id else (),
            district_dispatchers=not theirs,
            data={"status": r.status, "due_at": r.due_at.isoformat()},
            who=SYSTEM,
            event_id=event_key("overdue", r.id, r.due_at),
        )
    escalated = conn.execute(
        _ESCALATE, {"batch": BATCH, "after_s": rules.escalate_after_h * 3600}
    ).all()
    for r in escalated:
        emit(
            conn,
            K.ESCALATED,
            r.id,
            district_dispatchers=True,
            data={"due_at": r.due_at.isoformat()},
            who=SYSTEM,
            event_id=event_key("escalated", r.id, r.due_at),
        )
    return {"noticed": len(noticed), "escalated": len(escalated)}


def sweeps(
    rules: ReportSettings, also: Sequence[tuple[str, Sweep]] = ()
) -> tuple[tuple[str, Sweep], ...]:
    """The named sweeps of a round: the reports' own, then each of `also`."""
    return (("overdue", lambda conn: sweep(conn, rules)), *also)


class Sweeper:
    """A thread that sweeps every `reports.overdue_check_s` until stopped: the reports' sweep,
    then each of `also` (named, for the log)."""

    def __init__(
        self, engine: Engine, rules: ReportSettings, also: Sequence[tuple[str, Sweep]] = ()
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.sweeps = sweeps(rules, also)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="riskgrid-overdue", daemon=True)

    def start(self) -> Sweeper:
        """Start the thread; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to end, and wait for the sweep in hand."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def run(self) -> None:
        """Sweep until stopped; a full batch sweeps again at once."""
        while not self._stop.is_set():
            _, full = sweep_round(self.engine, self.sweeps)
            if not full:
                self._stop.wait(self.rules.overdue_check_s)


def sweep_round(
    engine: Engine, sweeps: Sequence[tuple[str, Sweep]], strict: bool = False
) -> tuple[dict[str, dict[str, int]], bool]:
    """Run each sweep once, each in its own transaction; return what each did and whether one
    took a full batch (more is waiting). A sweep that fails is logged and the next one runs
    (the database away: the next tick tries again), or with `strict` raises."""
    found: dict[str, dict[str, int]] = {}
    for name, one in sweeps:
        try:
            with engine.begin() as conn:
                found[name] = one(conn)
        except Exception as exc:
            if strict:
                raise
            log.warning("%s sweep failed: %s", name, type(exc).__name__)
    full = any(n >= BATCH for done in found.values() for n in done.values())
    return found, full
