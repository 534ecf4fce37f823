"""The fixed report taxonomy: themes, categories, responsible departments and stage time limits.

Codes are snake_case and stable (they are stored on reports); labels are zh/en. Departments
and time limits are defaults that settings can override per category
(`RISKGRID_REPORTS__DEPARTMENTS`, `RISKGRID_REPORTS__TIME_LIMITS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from geo.vocabulary import OPEN_STATUSES, ReportStatus, ResolutionLevel, Role

S = ReportStatus
R = Role


@dataclass(frozen=True)
class Move:
    """A step of the closed loop and the roles that may take it (an admin may take any)."""

    frm: ReportStatus
    to: ReportStatus
    roles: tuple[Role, ...]


def _m(frm: ReportStatus, to: ReportStatus, *roles: Role) -> Move:
    return Move(frm, to, (*roles, R.ADMIN))


# The one table of who moves what (GB/T 30428's loop): the loop's checks and the themes listing
# derive from it. A worker's moves are further limited to the reports of their own grids (核查),
# a department user's to the reports dispatched to their department.
MOVES: tuple[Move, ...] = (
    _m(S.REPORTED, S.ACCEPTED, R.DISPATCHER),  # 立案
    _m(S.REPORTED, S.REJECTED, R.DISPATCHER),  # 不予立案, with a reason
    _m(S.REPORTED, S.DUPLICATE, R.DISPATCHER),  # naming the report it duplicates
    _m(S.ACCEPTED, S.DISPATCHED, R.DISPATCHER),  # 派遣, naming a department
    _m(S.RETURNED, S.DISPATCHED, R.DISPATCHER),
    _m(S.DISPATCHED, S.IN_PROGRESS, R.DEPARTMENT),
    _m(S.DISPATCHED, S.RETURNED, R.DEPARTMENT),  # 回退: not ours, with a reason
    _m(S.IN_PROGRESS, S.RESOLVED, R.DEPARTMENT),  # with the level where it was resolved
    _m(S.RESOLVED, S.VERIFIED, R.WORKER, R.DISPATCHER),  # 核查通过
    _m(S.RESOLVED, S.IN_PROGRESS, R.WORKER, R.DISPATCHER),  # 返工, with a reason
)
# What a move needs besides `to`: the loop refuses it (422) without. A dispatch names a
# department of the routing table, by default the one the category routes to.
NEEDS: dict[tuple[str, str], str] = {
    (S.REPORTED, S.REJECTED): "reason",
    (S.REPORTED, S.DUPLICATE): "duplicate_of",
    (S.DISPATCHED, S.RETURNED): "reason",
    (S.IN_PROGRESS, S.RESOLVED): "level",
    (S.RESOLVED, S.IN_PROGRESS): "reason",
}
MOVE_BY_STEP: dict[tuple[str, str], Move] = {(m.frm, m.to): m for m in MOVES}
TRANSITIONS: dict[ReportStatus, tuple[ReportStatus, ...]] = {
    s: tuple(m.to for m in MOVES if m.frm == s) for s in ReportStatus
}
# Who sends reports (anywhere in the service area), and who reassigns one to a grid by hand.
# Dispatchers enter what reaches the command centre by phone (the 12345 hotline).
SEND_ROLES: tuple[Role, ...] = (R.WORKER, R.DISPATCHER, R.ADMIN)
REASSIGN_ROLES: tuple[Role, ...] = (R.DISPATCHER, R.ADMIN)
# Who reports a hazard already fixed on the spot (自行处置).
ON_SITE_ROLES: tuple[Role, ...] = (R.WORKER, R.ADMIN)
# Who sets the 督办 (supervision) flag.
SUPERVISE_ROLES: tuple[Role, ...] = (R.DISPATCHER, R.ADMIN)


def moves_as_dict() -> list[dict]:
    """Return the moves of the loop, who may make them and what each needs, as JSON data."""
    return [
        {
            "from": str(m.frm),
            "to": str(m.to),
            "roles": [str(r) for r in m.roles],
            "needs": [NEEDS[(m.frm, m.to)]] if (m.frm, m.to) in NEEDS else [],
        }
        for m in MOVES
    ]


_ROLE_WORDS = {
    R.ADMIN: "an admin",
    R.DISPATCHER: "a dispatcher",
    R.DEPARTMENT: "a department user",
    R.COORDINATOR: "a coordinator",
    R.PLANNER: "a planner",
    R.WORKER: "a worker",
}


def roles_text(roles: tuple[Role, ...]) -> str:
    """Return 'a dispatcher or an admin': the roles in words, for messages."""
    words = [_ROLE_WORDS[r] for r in roles]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


L = ResolutionLevel
LEVELS: dict[ResolutionLevel, tuple[str, str]] = {
    L.GRID: ("网格", "grid"),
    L.COMMUNITY: ("社区/村", "community"),
    L.STREET: ("街道/乡镇", "street/township"),
    L.DISTRICT: ("区县", "district/county"),
    L.CITY: ("市", "city"),
}


@dataclass(frozen=True)
class Category:
    """A kind of report within a theme."""

    code: str
    zh: str
    en: str
    department: str
    limits: str | None = None  # overrides the theme's limits, written as Theme.limits


@dataclass(frozen=True)
class Theme:
    """A campaign theme and its categories."""

    code: str
    zh: str
    en: str
    # One limit per open stage (OPEN_STATUSES), e.g. "2wh 2wh 4wh 5wd 2wh 2wd": to accept (立案),
    # dispatch (派遣), take up, resolve (处置), re-dispatch after a return, verify (核查). Units:
    # wh 工作时, wd 工作日, h calendar hours, d 自然日 (geo.worktime); urgent: calendar time.
    limits: str
    categories: tuple[Category, ...] = field(default_factory=tuple)


def _c(code: str, zh: str, en: str, dept: str, limits: str | None = None) -> Category:
    return Category(code, zh, en, dept, limits)


# Round the clock: the stages of an emergency, in minutes to hours of calendar time.
_URGENT = "0.25h 0.25h 0.5h 4h 0.25h 24h"

THEMES: tuple[Theme, ...] = (
    Theme(
        "flood",
        "防汛防台",
        "flood and typhoon",
        "1h 1h 2h 48h 1h 24h",  # flood season: the command centre is on duty day and night
        (
            _c("waterlogging", "内涝积水", "waterlogging", "水务局"),
            _c(
                "embankment",
                "堤防隐患",
                "embankment weakness",
                "水务局",
                "0.5h 0.5h 1h 24h 0.5h 24h",
            ),
            _c("dilapidated_housing", "危旧房屋", "dilapidated housing", "住房和城乡建设局"),
            _c(
                "drainage_blocked",
                "排水不畅",
                "blocked drainage",
                "城市管理综合执法局",
                "2wh 2wh 4wh 2wd 2wh 1wd",
            ),
            _c(
                "river_bank",
                "河岸坍塌",
                "river bank collapse",
                "水务局",
                "0.5h 0.5h 1h 24h 0.5h 24h",
            ),
            _c(
                "relocation_needed",
                "人员需转移",
                "residents to relocate",
                "应急管理局",
                "0.25h 0.25h 0.5h 6h 0.25h 12h",
            ),
        ),
    ),
    Theme(
        "road_safety",
        "道路交通安全",
        "road traffic safety",
        "2wh 2wh 4wh 5wd 2wh 2wd",
        (
            _c("road_damage", "道路破损", "road damage", "交通运输局"),
            _c("broken_bridge", "桥梁损坏", "broken bridge", "交通运输局", "1h 1h 2h 72h 1h 24h"),
            _c(
                "missing_sign",
                "标志标线缺失",
                "missing sign or marking",
                "公安交警支队",
                "2wh 2wh 4wh 3wd 2wh 2wd",
            ),
            _c(
                "blackspot",
                "事故多发点段",
                "accident blackspot",
                "公安交警支队",
                "1wd 1wd 1wd 20wd 1wd 5wd",  # an engineering fix, not a patrol
            ),
            _c(
                "illegal_parking",
                "违规停车",
                "illegal parking",
                "公安交警支队",
                "1wh 1wh 1wh 5wh 1wh 1wd",
            ),
            _c(
                "farm_vehicle",
                "农用车违规载人",
                "farm vehicle carrying people",
                "公安交警支队",
                "1wh 1wh 2wh 1wd 1wh 2wd",
            ),
        ),
    ),
    Theme(
        "fire",
        "消防安全",
        "fire safety",
        "2wh 2wh 4wh 5wd 2wh 2wd",
        (
            _c("workshop_fire_risk", "小作坊火灾隐患", "workshop fire risk", "消防救援支队"),
            _c(
                "electrical",
                "电气线路隐患",
                "electrical wiring hazard",
                "消防救援支队",
                "1wh 1wh 2wh 3wd 1wh 2wd",
            ),
            _c(
                "blocked_exit",
                "安全出口堵塞",
                "blocked fire exit",
                "消防救援支队",
                "1h 1h 2h 24h 1h 24h",
            ),
            _c(
                "flammable_storage",
                "易燃物违规存放",
                "flammables stored unsafely",
                "消防救援支队",
                "1wh 1wh 2wh 2wd 1wh 1wd",
            ),
            _c("extinguisher_missing", "消防器材缺失", "missing fire equipment", "消防救援支队"),
        ),
    ),
    Theme(
        "gas",
        "燃气安全",
        "gas safety",
        "1wh 1wh 2wh 3wd 1wh 2wd",
        (
            _c("gas_leak", "燃气泄漏", "gas leak", "燃气公司", _URGENT),
            _c("unsafe_appliance", "不安全用气设备", "unsafe gas appliance", "住房和城乡建设局"),
            _c(
                "pipeline_damage",
                "燃气管道受损",
                "damaged gas pipeline",
                "燃气公司",
                "0.5h 0.5h 1h 24h 0.5h 48h",
            ),
            _c(
                "illegal_cylinder",
                "违规使用气瓶",
                "illegal gas cylinder",
                "住房和城乡建设局",
                "1wh 1wh 2wh 2wd 1wh 2wd",
            ),
        ),
    ),
    Theme(
        "elderly",
        "关爱老年人",
        "elderly residents",
        "4wh 4wh 1wd 5wd 4wh 2wd",
        (
            _c(
                "living_alone",
                "独居老人",
                "elderly living alone",
                "民政局",
                "2wh 2wh 4wh 3wd 2wh 2wd",
            ),
            _c("disabled_care", "失能照护", "care for the disabled elderly", "民政局"),
            _c(
                "health_emergency",
                "突发疾病",
                "health emergency",
                "卫生健康委员会",
                "0.25h 0.25h 0.5h 6h 0.25h 24h",
            ),
            _c("home_safety", "居家安全隐患", "home safety hazard", "民政局"),
        ),
    ),
    Theme(
        "dispute",
        "矛盾纠纷",
        "disputes",
        "1wd 1wd 1wd 30d 1wd 3wd",  # mediation is counted in 自然日 (a month)
        (
            _c("property_fee", "物业费纠纷", "property fee dispute", "街道综治中心"),
            _c("parking_fee", "停车费纠纷", "parking fee dispute", "街道综治中心"),
            _c(
                "neighbour",
                "邻里纠纷",
                "neighbour dispute",
                "街道综治中心",
                "4wh 4wh 1wd 15d 4wh 3wd",
            ),
            _c("family", "家庭纠纷", "family dispute", "司法所"),
            _c(
                "labour_wage",
                "劳资欠薪",
                "unpaid wages",
                "人力资源和社会保障局",
                "4wh 4wh 1wd 60wd 4wh 3wd",  # 劳动保障监察条例 art. 17: 60 working days
            ),
            _c("land", "土地纠纷", "land dispute", "司法所", "1wd 1wd 1wd 60d 1wd 5wd"),
        ),
    ),
    Theme(
        "stability",
        "社会稳定",
        "social stability",
        "2wh 2wh 4wh 5wd 2wh 2wd",
        (
            _c("petition", "信访苗头", "emerging petition", "信访局"),
            _c(
                "mass_gathering",
                "群体性事件苗头",
                "possible mass gathering",
                "公安局",
                "0.5h 0.5h 1h 24h 0.5h 48h",
            ),
            _c(
                "key_person",
                "重点人员动态",
                "key person of concern",
                "公安局",
                "1wh 1wh 2wh 1wd 1wh 1wd",
            ),
            _c("rumour", "不实信息", "rumour", "网信办", "1wh 1wh 2wh 1wd 1wh 1wd"),
        ),
    ),
)

THEME_BY_CODE: dict[str, Theme] = {t.code: t for t in THEMES}
CATEGORY_BY_CODE: dict[tuple[str, str], Category] = {
    (t.code, c.code): c for t in THEMES for c in t.categories
}


def category(theme: str, code: str) -> Category | None:
    """Return the category `code` of `theme`, or None when there is no such pair."""
    return CATEGORY_BY_CODE.get((theme, code))


def stage_limits(theme: str, code: str) -> dict[str, str]:
    """Return the built-in limit of each open stage of a category ("4wh"; geo.reports.deadlines
    parses them and applies the settings)."""
    cat = CATEGORY_BY_CODE[(theme, code)]
    limits = (cat.limits or THEME_BY_CODE[theme].limits).split()
    return dict(zip((s.value for s in OPEN_STATUSES), limits, strict=True))


def department(theme: str, code: str, overrides: dict[str, str] | None = None) -> str:
    """Return the department responsible for a category (settings override the defaults)."""
    return (overrides or {}).get(code) or CATEGORY_BY_CODE[(theme, code)].department


def departments(overrides: dict[str, str] | None = None) -> frozenset[str]:
    """Return every department of the routing table in force (settings override defaults)."""
    return frozenset(department(t.code, c.code, overrides) for t in THEMES for c in t.categories)


def as_dict(
    overrides_dept: dict[str, str] | None, limits: Mapping[tuple[str, str], dict[str, dict]]
) -> list[dict]:
    """Return the taxonomy as JSON-ready data, with the departments and limits in force
    (`limits` per (theme, category): geo.reports.deadlines.limits_as_dict())."""
    return [
        {
            "code": t.code,
            "zh": t.zh,
            "en": t.en,
            "categories": [
                {
                    "code": c.code,
                    "zh": c.zh,
                    "en": c.en,
                    "department": department(t.code, c.code, overrides_dept),
                    "limits": limits[(t.code, c.code)],
                }
                for c in t.categories
            ],
        }
        for t in THEMES
    ]
