"""The server-rendered pages: the start page, the campaign dashboard, the grid worker's phone
page, the login page and the page that says a right is missing (templates under
`web/templates/`, rendered by `web.templating`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import Connection

from geo.campaigns.store import list_campaigns
from geo.grids.layer import GridLayer
from geo.identity.scope import ReportScope
from geo.reports import queries, taxonomy
from geo.reports.queries import ReportFilter
from web.templating import Session, lang_url, navigation, render_template

LABELS = {
    "zh": {
        "index_title": "网格化风险地图",
        "index_heading": "riskgrid 网格化风险地图",
        "themes": "专题",
        "theme": "专题",
        "reports": "事件数",
        "campaigns": "创安行动",
        "campaign": "行动",
        "dates": "时间",
        "rate": "办结率",
        "dashboard": "创安行动看板",
        "events": "事件",
        "resolved": "已办结",
        "street_share": "街道/乡镇及以下办结占比",
        "overdue": "逾期",
        "no_data": "无数据",
        "report_title": "网格员上报",
        "reported": "上报",
        "trend": "每周事件数",
        "trend_x": "周（起始日，{years}年）",
        "trend_y": "事件数（件）",
        "trend_title": "{week} 起一周：上报 {n} 件，已办结 {r} 件",
        "all_campaigns": "全部创安行动：走访进度、覆盖地图与排查清单",
        "map": "地图",
    },
    "en": {
        "index_title": "Grid risk maps",
        "index_heading": "riskgrid grid risk maps",
        "themes": "Themes",
        "theme": "Theme",
        "reports": "Reports",
        "campaigns": "Campaigns",
        "campaign": "Campaign",
        "dates": "Dates",
        "rate": "Resolution rate",
        "dashboard": "Campaign dashboard",
        "events": "Reports",
        "resolved": "Resolved",
        "street_share": "Resolved at street/township level or below",
        "overdue": "Overdue",
        "no_data": "No data",
        "report_title": "Report an event",
        "reported": "Reported",
        "trend": "Reports per week",
        "trend_x": "Week starting ({years})",
        "trend_y": "Reports",
        "trend_title": "Week of {week}: {n} reported, {r} resolved",
        "all_campaigns": "Every campaign: progress, coverage map and checklist",
        "map": "Map",
    },
}
# The phone page's words: its script shows them ({name} is filled in there).
REPORT_WORDS = {
    "zh": {
        "heading": "网格员事件上报",
        "theme": "专题",
        "category": "类别",
        "position": "位置",
        "gps": "使用手机定位",
        "pick": "在地图上选点",
        "lon": "经度 lon",
        "lat": "纬度 lat",
        "description": "描述",
        "reporter": "上报人",
        "send": "提交",
        "login_heading": "请重新登录",
        "login_why": "登录已失效。待发送的上报保存在手机上，登录后自动发送。",
        "username": "用户名",
        "password": "密码",
        "login": "登录",
        "logging_in": "登录中…",
        "wrong": "密码错误，请重试",
        "locked": "登录失败次数过多，请 {wait}后再试",
        "login_offline": "当前离线：联网后再登录",
        "logged_in": "已重新登录",
        "others": "另有 {n} 条 {user} 的待发送上报，需其本人登录后发送",
        "kept_for_login": "已保存在手机上，登录后自动发送",
        "seconds": "{n} 秒",
        "minutes": "{n} 分钟",
        "outbox": "待发送 {n} 条 (联网后自动发送)",
        "unassigned": "已保存，暂未匹配网格 (待人工分派)。编号 {id}",
        "assigned": "已分派到网格 {code} {name}",
        "department": "责任部门: {department}",
        "nearest": "位置在网格外 {m} 米，已就近分派",
        "near_boundary": "⚠ 距网格 {code} 边界仅 {m} 米，请确认",
        "flushed": "已补发 {n} 条离线上报",
        "refused": "，{n} 条被拒收",
        "no_position": "请先定位或填写经纬度",
        "offline": "当前离线，已保存，联网后自动发送",
        "dropped": "网络中断，已保存，联网后自动发送",
        "no_gps": "此设备不支持定位",
        "located": "定位成功 (精度 {m} 米)",
        "gps_failed": "定位失败: {error}",
        "map_failed": "地图加载失败，请填写经纬度",
        "picked": "已选点 {lon}, {lat}",
    },
    "en": {
        "heading": "Report an event",
        "theme": "Theme",
        "category": "Category",
        "position": "Position",
        "gps": "Use the phone's position",
        "pick": "Pick a point on the map",
        "lon": "longitude",
        "lat": "latitude",
        "description": "Description",
        "reporter": "Reported by",
        "send": "Send",
        "login_heading": "Log in again",
        "login_why": "Your login has ended. The reports waiting are kept on this phone and sent "
        "once you log in.",
        "username": "Username",
        "password": "Password",
        "login": "Log in",
        "logging_in": "Logging in…",
        "wrong": "Wrong password: try again",
        "locked": "Too many failed logins: try again in {wait}",
        "login_offline": "Offline: log in once the phone is back online",
        "logged_in": "Logged in again",
        "others": "{n} more reports of {user} are waiting: they are sent once {user} logs in",
        "kept_for_login": "Kept on the phone: sent once you log in",
        "seconds": "{n} s",
        "minutes": "{n} min",
        "outbox": "{n} waiting (sent when back online)",
        "unassigned": "Saved; no grid matched yet (assigned by hand). Number {id}",
        "assigned": "Assigned to grid {code} {name}",
        "department": "Department: {department}",
        "nearest": "Outside every grid by {m} m: assigned to the nearest",
        "near_boundary": "⚠ Only {m} m from the border of grid {code}: please check",
        "flushed": "{n} offline reports sent",
        "refused": ", {n} refused",
        "no_position": "Locate the phone or enter the coordinates first",
        "offline": "Offline: saved, sent when back online",
        "dropped": "Connection lost: saved, sent when back online",
        "no_gps": "This device cannot locate itself",
        "located": "Located (accuracy {m} m)",
        "gps_failed": "Locating failed: {error}",
        "map_failed": "The map did not load: enter the coordinates",
        "picked": "Picked {lon}, {lat}",
    },
}


@dataclass(frozen=True)
class PageRequest:
    """What a page is asked for with: its path and query (for the navigation and the language
    switch), the language, and who is logged in (None only on the login page)."""

    path: str
    query: str = ""
    lang: str = "zh"
    session: Session | None = None


def _context(r: PageRequest) -> dict:
    return {
        "lang": r.lang,
        "lab": LABELS[r.lang],
        "nav": navigation(r.path, r.query, r.lang, r.session),
    }


def index(conn: Connection, r: PageRequest, scope: ReportScope) -> str:
    """Return the start page: themes and campaigns with the counts of the reports in `scope`,
    and links."""
    by_theme = queries.stats(conn, ReportFilter(scope=scope))["by_theme"]
    themes = [
        {
            "href": lang_url(f"/maps/{t.code}", "", r.lang),
            "name": t.zh if r.lang == "zh" else t.en,
            "other": t.en if r.lang == "zh" else t.zh,
            "reports": by_theme.get(t.code, 0),
        }
        for t in taxonomy.THEMES
    ]
    campaigns = []
    for c in list_campaigns(conn):
        s = queries.stats(conn, ReportFilter(campaign=c["code"], scope=scope))
        href = lang_url(f"/maps/{c['theme']}", urlencode({"campaign": c["code"]}), r.lang)
        page = lang_url(f"/campaigns/{c['code']}", "", r.lang)
        campaigns.append({**c, "href": href, "page_href": page, "stats": s})
    return render_template(
        "index.html",
        themes=themes,
        campaigns=campaigns,
        campaigns_href=lang_url("/campaigns", "", r.lang),
        **_context(r),
    )


# The weekly trend's SVG: the plot area and the margins its axes and legend take, in px.
TREND = {"width": 700, "height": 200, "left": 60, "right": 12, "top": 28, "bottom": 46}


def nice_ticks(top: int, most: int = 5) -> list[int]:
    """Return axis ticks from 0 at a round step (1, 2 or 5 × 10ⁿ) reaching `top` or more."""
    raw = max(top, 1) / most
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    step = max(int(step), 1)
    return list(range(0, -(-max(top, 1) // step) * step + 1, step))


def _every_week(weeks: list) -> list[tuple]:
    """Return the weeks from the first to the last, a week with no report as (week, 0, 0)."""
    found = {w: (n, r) for w, n, r in weeks}
    out, week = [], weeks[0][0]
    while week <= weeks[-1][0]:
        out.append((week, *found.get(week, (0, 0))))
        week += timedelta(days=7)
    return out


def _trend_chart(weeks: list, lab: dict) -> dict:
    """Return the weekly trend as SVG parts: reported and resolved bars, the y axis's ticks
    (reports) and the x axis's (week starting), their titles and the legend."""
    t = TREND
    plot_w, plot_h = t["width"] - t["left"] - t["right"], t["height"] - t["top"] - t["bottom"]
    weeks = _every_week(weeks)
    ticks = nice_ticks(max(n for _, n, _ in weeks))
    scale = plot_h / ticks[-1]
    step = plot_w / len(weeks)
    every = -(-len(weeks) // 8)  # at most 8 dates under the axis
    base = t["top"] + plot_h

    def bar(i: int, n: int) -> dict:
        return {"x": f"{t['left'] + i * step + 1:.1f}", "y": f"{base - n * scale:.1f}",
                "width": f"{max(step - 2, 1):.1f}", "height": f"{n * scale:.1f}"}  # fmt: skip

    years = sorted({f"{w:%Y}" for w, _, _ in weeks})
    return {
        **t,
        "base": base,
        "right_x": t["width"] - t["right"],
        "bars": [
            {
                "reported": bar(i, n),
                "resolved": bar(i, r),
                "title": lab["trend_title"].format(week=f"{w:%Y-%m-%d}", n=n, r=r),
            }
            for i, (w, n, r) in enumerate(weeks)
        ],
        "y_ticks": [{"y": f"{base - v * scale:.1f}", "label": f"{v:,}"} for v in ticks],
        "x_ticks": [
            {"x": f"{t['left'] + (i + 0.5) * step:.1f}", "label": f"{w:%m-%d}"}
            for i, (w, _, _) in enumerate(weeks)
            if i % every == 0
        ],
        "x_title": lab["trend_x"].format(years="–".join(years)),
        "y_title": lab["trend_y"],
        "y_title_at": f"{t['top'] + plot_h / 2:.1f}",
        "x_title_at": f"{t['left'] + plot_w / 2:.1f}",
    }


def dashboard(conn: Connection, r: PageRequest, scope: ReportScope) -> str:
    """Return the campaign dashboard: totals, resolution, level, weekly trend per campaign, of
    the reports in `scope`."""
    lab = LABELS[r.lang]
    campaigns = []
    for c in list_campaigns(conn):
        f = ReportFilter(campaign=c["code"], scope=scope)
        weeks = queries.weekly_counts(conn, f)
        trend = _trend_chart(weeks, lab) if weeks else None
        href = lang_url(f"/campaigns/{c['code']}", "", r.lang)
        campaigns.append({**c, "stats": queries.stats(conn, f), "trend": trend, "href": href})
    return render_template("dashboard.html", campaigns=campaigns, **_context(r))


def town_centre(layer: GridLayer) -> tuple[float, float]:
    """Return (lat, lon) where the grids are smallest: the median point of the smallest tenth.

    Grids are drawn to what one worker can walk, so the small ones lie where the town is
    densest: a good first view for a phone.
    """
    small = np.argsort(layer.area_km2)[: max(1, len(layer.codes) // 10)]
    points = layer.frame.geometry.iloc[small].representative_point()
    return round(float(np.median(points.y)), 5), round(float(np.median(points.x)), 5)


LOGIN_WORDS = {
    "zh": {
        "title": "登录",
        "heading": "登录 riskgrid",
        "intro": "网格化风险地图：请用管理员分配的账号登录。",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "wrong": "用户名或密码错误，请重新输入。",
        "locked": "登录失败次数过多，请 {wait}后再试，或联系管理员。",
        "expired": "登录表单已过期，请重新输入用户名和密码。",
        "no_account": "没有账号或忘记密码？请联系管理员。",
    },
    "en": {
        "title": "Log in",
        "heading": "Log in to riskgrid",
        "intro": "Grid risk maps: log in with the account an administrator gave you.",
        "username": "Username",
        "password": "Password",
        "submit": "Log in",
        "wrong": "Wrong username or password: type them again.",
        "locked": "Too many failed logins: try again in {wait}, or ask an administrator.",
        "expired": "The login form had expired: type the username and password again.",
        "no_account": "No account, or forgot the password? Ask an administrator.",
    },
}


def wait_words(seconds: int, lang: str) -> str:
    """Return a wait in words: '40 秒', '15 分钟'; '40 s', '15 min'."""
    minutes = -(-seconds // 60)
    if lang == "zh":
        return f"{seconds} 秒" if seconds < 60 else f"{minutes} 分钟"
    return f"{seconds} s" if seconds < 60 else f"{minutes} min"


def login(
    r: PageRequest,
    next_url: str,
    error: str | None = None,
    username: str = "",
    wait_s: int = 0,
    csrf: str = "",
) -> str:
    """Return the login page (only the language switch above it); `error` is 'wrong' after a
    wrong password, 'locked' during a lockout of `wait_s` seconds, 'expired' for a form whose
    token (`csrf`, the login form's own) did not match."""
    words = LOGIN_WORDS[r.lang]
    message = None
    if error is not None:
        message = words[error].replace("{wait}", wait_words(wait_s, r.lang))
    return render_template(
        "login.html",
        words=words,
        error=message,
        action=lang_url("/login", "", r.lang),
        next_url=next_url,
        username=username,
        csrf=csrf,
        **_context(PageRequest(r.path, r.query, r.lang, None)),
    )


FORBIDDEN_WORDS = {
    "zh": {
        "title": "没有权限",
        "coordinator": "你以 {name}（{role}）登录。"
        "汛期协调地图仅对汛期协调员、指挥中心和管理员开放。",
        "what_next": "如需查看，请用有权限的账号登录（先退出登录），或请管理员调整你的角色。",
    },
    "en": {
        "title": "Not allowed",
        "coordinator": "You are logged in as {name} ({role}). The flood coordinator's map is for "
        "flood coordinators, dispatchers and administrators.",
        "what_next": "To open it, log out and log in with an account that has the right, or ask "
        "an administrator to change your role.",
    },
}


def forbidden(r: PageRequest, what: str) -> str:
    """Return the page telling a logged-in user that the page `what` ('coordinator') is not for
    their role (answered with 403)."""
    if r.session is None:
        raise ValueError("a page is forbidden to someone logged in: give the session")
    words = FORBIDDEN_WORDS[r.lang]
    context = _context(r)
    user = context["nav"]["user"]
    message = words[what].replace("{name}", user["name"]).replace("{role}", user["role"])
    return render_template("forbidden.html", words=words, message=message, **context)
