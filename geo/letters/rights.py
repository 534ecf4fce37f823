"""Who sees which letters, as a SQL condition on `letters l` (applied in the query: a letter
out of sight is not found, 404).

- admin, planner, a city-wide dispatcher: every letter (planners read, never move them);
- a district dispatcher: letters whose districts all lie within theirs (a city-wide letter is
  the city's);
- a department user: the letters addressed to their department once issued (a draft is the
  sender's own);
- workers and coordinators: none (403: letters are no part of their work).
"""

from __future__ import annotations

from geo.errors import Forbidden
from geo.identity.principal import Principal
from geo.letters.status import LetterStatus
from geo.vocabulary import Role

READERS: tuple[Role, ...] = (Role.ADMIN, Role.DISPATCHER, Role.DEPARTMENT, Role.PLANNER)


def check_reader(who: Principal) -> None:
    """Raise Forbidden for a role that reads no letters."""
    if who.role not in READERS:
        raise Forbidden(
            "risk letters are read by dispatchers, the departments they are addressed to, "
            f"planners and admins; you are logged in as {who.role or 'no role'}"
        )


def visible(who: Principal) -> tuple[str, dict]:
    """Return the SQL condition on `letters l` of the letters `who` sees, and its binds."""
    check_reader(who)
    if who.role == Role.DEPARTMENT:
        return (
            f"(l.department = :see_department AND l.status <> '{LetterStatus.DRAFT}')",
            {"see_department": who.department or ""},
        )
    if who.role == Role.DISPATCHER and who.districts:
        return (
            "(cardinality(l.districts) > 0 AND l.districts <@ CAST(:see_districts AS text[]))",
            {"see_districts": list(who.districts)},
        )
    return "TRUE", {}
