"""Drafting a letter: the analysis of a department's remit within the scope (figures, Gi* hot
spots, the emerging trend, open and overdue reports with their ages, the map), the texts it
starts with (subject, opening, recommended actions, closing), stored as a draft.

The analysis is kept in the letter as it was when drafted: what was issued is what the
department read, whatever the reports do afterwards.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text

from geo.cache import versions
from geo.errors import Forbidden
from geo.identity.principal import Principal
from geo.letters import figures, mapdata, open_reports, recommend, remit, spots, store
from geo.letters.remit import LetterScope
from geo.letters.status import SENDERS
from geo.reports import taxonomy
from geo.reports.taxonomy import roles_text
from geo.settings import Settings


def _day(t: datetime, zone: ZoneInfo) -> str:
    local = t.astimezone(zone)
    return f"{local.year}年{local.month}月{local.day}日"


def _topic(conn: Connection, s: LetterScope) -> str:
    if s.campaign is not None:
        name = conn.execute(
            text("SELECT name FROM campaigns WHERE code = :c"), {"c": s.campaign}
        ).scalar_one()
        return f"{name}行动中"
    if s.theme is not None:
        return taxonomy.THEME_BY_CODE[s.theme].zh
    return "职责范围内"


def texts(conn: Connection, s: LetterScope, content: dict, settings: Settings) -> dict:
    """Return the texts a draft starts with, written from its analysis."""
    zone = ZoneInfo(settings.worktime.timezone)
    assert s.since is not None and s.until is not None  # noqa: S101 - resolve fills them
    f, o = content["figures"], content["open_reports"]
    hot = content["hotspots"]["hot"]
    topic = _topic(conn, s)
    spots_text = f"，在 {hot} 个网格形成风险聚集（Gi* 热点）" if hot else ""
    opening = (
        f"根据网格化服务管理平台 {_day(s.since, zone)}至{_day(s.until, zone)} 的数据分析，"
        f"你单位{topic}共有事件 {f['received']} 件，目前仍有 {o['total']} 件未办结、其中超期 "
        f"{o['overdue']} 件{spots_text}。现将有关情况和工作建议提示如下，请认真研究，"
        "抓好整改落实。"
    )
    return {
        "subject": f"关于{topic}风险隐患的提示函",
        "opening": opening,
        "recommendations": recommend.draft(
            f, content["by_category"], content["hotspots"], content["trend"], o
        ),
        "closing": f"请于回复期限前将整改落实情况书面回复{settings.letters.sender}。",
    }


def analyse(conn: Connection, s: LetterScope, settings: Settings) -> dict:
    """Return the analysis of a (resolved) scope that a letter keeps as its content."""
    assert s.since is not None and s.until is not None  # noqa: S101 - resolve fills them
    f = remit.report_filter(s)
    v = versions(conn)
    rules = settings.letters
    totals, by_category = figures.figures(conn, f)
    hotspots, classes = spots.hotspots(conn, f, v, rules.hotspots_listed)
    categories = remit.remit(s.department, settings.reports.departments)
    return {
        "drafted_at": conn.execute(text("SELECT now()")).scalar_one().isoformat(),
        "sender": rules.sender,
        "period": {"since": s.since.isoformat(), "until": s.until.isoformat()},
        "remit": [{"theme": remit.theme_of(c), "category": c.code, "zh": c.zh} for c in categories],
        "figures": totals,
        "by_category": by_category,
        "hotspots": hotspots,
        "trend": spots.trend(conn, f, v, rules.hotspots_listed),
        "open_reports": open_reports.open_reports(conn, f, settings, rules.open_listed),
        "map": mapdata.letter_map(conn, f, classes, v, settings.auth.sensitive_themes),
    }


def draft(engine: Engine, asked: LetterScope, who: Principal, settings: Settings) -> dict:
    """Draft a letter to a department from the analysis of its remit within `asked`; return
    it whole. Forbidden unless `who` sends letters (a dispatcher within their districts)."""
    if who.role not in SENDERS:
        raise Forbidden(
            f"letters are drafted by {roles_text(SENDERS)}; you are logged in as "
            f"{who.role or 'no role'}"
        )
    with engine.begin() as conn:
        s = remit.resolve(conn, asked, who, settings)
        content = analyse(conn, s, settings)
        letter_id = store.insert(conn, who, s.as_dict(), content, texts(conn, s, content, settings))
        return store.get(conn, letter_id, who)
