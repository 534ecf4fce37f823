"""Departments of the routing table and their people: whom a dispatch may name as handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import ConnDep, PlainQuery, PrincipalDep, SettingsDep
from api.errors import error_responses
from geo.errors import Forbidden, NotFound
from geo.identity import departments
from geo.reports import taxonomy

router = APIRouter(prefix="/api/v1/departments", tags=["departments"])


class DepartmentUser(BaseModel):
    """A department user a dispatch may name as the report's handler."""

    id: int
    username: str
    name: str | None


@router.get(
    "/{name}/users",
    summary="The active users of a department (dispatchers, admins): handlers to dispatch to",
    responses=error_responses(404),
)
def department_users(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    name: Annotated[str, Path(max_length=100), PlainQuery],
) -> list[DepartmentUser]:
    if who.role not in taxonomy.REASSIGN_ROLES:
        raise Forbidden(
            f"department users are listed for {taxonomy.roles_text(taxonomy.REASSIGN_ROLES)}; "
            f"you are logged in as {who.role or 'no role'}"
        )
    if name not in taxonomy.departments(settings.reports.departments):
        raise NotFound(f"no department {name!r} in the routing table")
    return [DepartmentUser(**u) for u in departments.members(conn, name)]
