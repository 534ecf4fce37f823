"""Who is asking: a user with a role and a scope, and the request they ask in."""

from __future__ import annotations

from dataclasses import dataclass, replace

from geo.vocabulary import Role


@dataclass(frozen=True)
class Principal:
    """A logged-in user (or the command line acting as `system`) and their scope.

    Rights are applied in geo's queries from this: a worker's grids, a dispatcher's or a
    coordinator's districts (none: city-wide), a department user's department.
    """

    user_id: int | None
    username: str
    role: Role | None  # None: someone not logged in (a failed login, in the audit log)
    name: str = ""
    grids: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    department: str | None = None
    token_id: int | None = None
    request_id: str | None = None
    client: str | None = None

    @property
    def sees_households(self) -> bool:
        """Whether households' names, phones and positions may be shown (within the scope)."""
        return self.role in (Role.ADMIN, Role.COORDINATOR, Role.WORKER)

    @property
    def sees_relocation(self) -> bool:
        """Whether relocation lists (names, phones, positions) may be shown."""
        return self.role in (Role.ADMIN, Role.COORDINATOR)

    @property
    def sees_sensitive_reports(self) -> bool:
        """Whether reports of sensitive themes show their description, reporter and point."""
        return self.role in (Role.ADMIN, Role.DISPATCHER, Role.DEPARTMENT, Role.WORKER)

    def in_request(self, request_id: str | None, client: str | None) -> Principal:
        """Return the same principal, tied to one request (for the audit log)."""
        return replace(self, request_id=request_id, client=client)


# The command line and migrations act as this principal: every right, audited as `system`.
SYSTEM = Principal(None, "system", Role.ADMIN, name="riskgrid command line")
