"""Overdue reports: a notice when a stage's deadline passes, and escalation to the district's
dispatchers (and the 督办 queue) when it stays passed for `reports.escalate_after_h`.

Every server process runs the same sweep (`Sweeper`); rows are claimed with FOR UPDATE SKIP
LOCKED and stamped in the same statement, so each report is noticed and escalated once per
stage however many processes sweep. A move clears both stamps: the next stage starts afresh.
"""

from __future__ import annotations

import logging
import threading

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


class Sweeper:
    """A thread that sweeps every `reports.overdue_check_s` until stopped."""

    def __init__(self, engine: Engine, rules: ReportSettings) -> None:
        self.engine = engine
        self.rules = rules
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
            try:
                with self.engine.begin() as conn:
                    done = sweep(conn, self.rules)
            except Exception as exc:  # the database away: try again at the next tick
                log.warning("overdue sweep failed: %s", type(exc).__name__)
                done = {"noticed": 0, "escalated": 0}
            if max(done.values()) < BATCH:
                self._stop.wait(self.rules.overdue_check_s)
