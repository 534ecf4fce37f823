"""The grid worker's phone pages: 上报 (the report form with photos), 我的上报 (the reports they
sent, with statuses) and 核查任务 (resolved reports of their grids to verify or send back as
rework). Each works offline: a service worker (js/phone-sw.js) keeps the last copy of each
page, and what the worker does waits on the phone until it can be sent."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection

from geo.cache import Versions
from geo.errors import InvalidInput
from geo.grids.layer import grid_layer
from geo.identity.scope import ReportScope
from geo.reports import queries, taxonomy
from geo.reports.queries import ReportFilter
from geo.vocabulary import ReportStatus
from web.assets import WEB, static_url
from web.pages import LABELS, REPORT_WORDS, PageRequest, town_centre
from web.status_names import status_names
from web.templating import lang_url, navigation, render_template

MINE_PATH = "/report/mine"
CHECKS_PATH = "/report/checks"
# A phone lists this many rows: a worker's last weeks; older reports are on the console.
LIST_LIMIT = 50

# What the service worker keeps at the first visit, for a phone that goes offline before it
# has opened every tab: the three pages (the tabs' addresses), their files and the taxonomy.
OFFLINE_ASSETS = (
    "css/base.css",
    "css/report.css",
    "js/session.js",
    "js/photo-queue.js",
    "js/phone-offline.js",
    "js/report.js",
    "js/checks.js",
)
THEMES_URL = "/api/v1/themes"

S = ReportStatus
STATUS_WORDS = {
    lang: {
        k: v.capitalize() if lang == "en" else v for k, v in status_names(lang, "worker").items()
    }
    for lang in ("zh", "en")
}
# The report form's photo words, beside its own (web.pages.REPORT_WORDS).
PHOTO_WORDS = {
    "zh": {
        "photo": "现场照片",
        "photos_waiting": "待发送照片 {n} 张 (联网后自动发送)",
        "photos_sent": "已发送照片 {n} 张",
        "photos_kept": "照片保存在手机上，稍后自动发送",
        "photo_not_kept": "照片无法保存在手机上 (存储已满?)，上报未发送",
        "on_site": "已当场处置 (自行处置)",
        "on_site_hint": "附处置后照片；由综治中心核查结案",
        "on_site_needs_photo": "自行处置需附处置后照片",
    },
    "en": {
        "photo": "Photos of the site",
        "photos_waiting": "{n} photos waiting (sent when back online)",
        "photos_sent": "{n} photos sent",
        "photos_kept": "The photos are kept on the phone and sent later",
        "photo_not_kept": "The photos could not be kept on the phone (storage full?): not sent",
        "on_site": "Fixed on the spot (自行处置)",
        "on_site_hint": "Add a photo of the fixed site; the command centre checks and closes it",
        "on_site_needs_photo": "A fix on the spot needs a photo of the fixed site",
    },
}
TAB_WORDS = {
    "zh": {"report": "上报", "mine": "我的上报", "checks": "核查任务"},
    "en": {"report": "Report", "mine": "My reports", "checks": "Checks"},
}
LIST_WORDS = {
    "zh": {
        "mine_title": "我的上报",
        "checks_title": "核查任务",
        "none_mine": "还没有上报",
        "none_checks": "暂无待核查的事件",
        "overdue": "超期",
        "grid": "网格",
        "department": "处置部门",
        "level": "处置层级",
        "saved_at": "离线副本，保存于 {at}",
        "verify": "核查通过",
        "rework": "返工",
        "reason": "返工原因",
        "note": "核查意见 (可选)",
        "check_photo": "核查照片",
        "send": "提交",
        "need_reason": "请填写返工原因",
        "need_photo": "返工需附核查照片",
        "queued": "已保存在手机上，联网后自动提交",
        "sent_verified": "已核查通过",
        "sent_rework": "已退回返工",
        "refused": "未被接受: {detail}",
        "checks_waiting": "待提交核查 {n} 条 (联网后自动提交)",
        "login_again": "登录已失效：待提交的核查保存在手机上，请重新登录",
    },
    "en": {
        "mine_title": "My reports",
        "checks_title": "Checks on site",
        "none_mine": "No reports yet",
        "none_checks": "Nothing to check",
        "overdue": "overdue",
        "grid": "Grid",
        "department": "Department",
        "level": "Resolved at",
        "saved_at": "Offline copy, saved {at}",
        "verify": "Verified",
        "rework": "Rework",
        "reason": "Why it needs rework",
        "note": "Note (optional)",
        "check_photo": "Photo of the check",
        "send": "Send",
        "need_reason": "Say why it needs rework",
        "need_photo": "A rework needs a photo of the check",
        "queued": "Kept on the phone: sent when back online",
        "sent_verified": "Verified",
        "sent_rework": "Sent back for rework",
        "refused": "Not taken: {detail}",
        "checks_waiting": "{n} checks waiting (sent when back online)",
        "login_again": "Your login has ended: the checks waiting are kept; log in again",
    },
}
FORBIDDEN_WORDS = {
    "zh": {
        "title": "没有权限",
        "message": "你以 {name}（{role}）登录。此页面是网格员的核查和上报记录。",
        "what_next": "如需查看，请用网格员账号登录（先退出登录），或请管理员调整你的角色。",
    },
    "en": {
        "title": "Not allowed",
        "message": "You are logged in as {name} ({role}). This page is a grid worker's.",
        "what_next": "To open it, log out and log in as a grid worker, or ask an administrator "
        "to change your role.",
    },
}


def _tabs(r: PageRequest) -> list[dict]:
    words = TAB_WORDS[r.lang]
    return [
        {"href": lang_url(path, "", r.lang), "label": words[key], "current": r.path == path}
        for key, path in (("report", "/report"), ("mine", MINE_PATH), ("checks", CHECKS_PATH))
    ]


def _context(r: PageRequest) -> dict:
    nav = navigation(r.path, r.query, r.lang, r.session)
    return {"lang": r.lang, "lab": LABELS[r.lang], "nav": nav}


def _phone_context(r: PageRequest) -> dict:
    if r.session is None:
        raise ValueError("the phone pages are a logged-in worker's: give the session")
    now = datetime.now(UTC).isoformat()  # when this copy was made: shown when it is replayed
    tabs = _tabs(r)
    keep = [t["href"] for t in tabs] + [static_url(a) for a in OFFLINE_ASSETS] + [THEMES_URL]
    return {**_context(r), "tabs": tabs, "keep": keep, "username": r.session.username, "now": now}


def report(conn: Connection, v: Versions, r: PageRequest) -> str:
    """Return the report form (上报): position, theme and category, photos, offline outbox, and
    the login form it shows when the login has ended."""
    ctx = _phone_context(r)
    try:
        centre: tuple[float, float] | None = town_centre(grid_layer(conn, v))
    except InvalidInput:  # no grids loaded yet: the pick map starts on the whole world
        centre = None
    session = r.session
    assert session is not None  # noqa: S101 - checked by _phone_context
    user = {"username": session.username, "name": session.name or session.username}
    words = {**REPORT_WORDS[r.lang], **PHOTO_WORDS[r.lang]}
    return render_template("report.html", words=words, centre=centre, user=user, **ctx)


def _rows(conn: Connection, f: ReportFilter, lang: str, timezone: str) -> list[dict]:
    """Return one page of reports (newest first) as the phone lists them."""
    zone = ZoneInfo(timezone)
    found = orjson.loads(queries.page(conn, f, LIST_LIMIT, None))["features"]
    rows = []
    for feature in found:
        p = feature["properties"]
        cat = taxonomy.category(p["theme"], p["category"])
        at = datetime.fromisoformat(p["reported_at"]).astimezone(zone)
        rows.append(
            {
                "id": p["id"],
                "short": p["id"][:8],
                "category": (cat.zh if lang == "zh" else cat.en) if cat else p["category"],
                "status": p["status"],
                "status_words": STATUS_WORDS[lang].get(p["status"], p["status"]),
                "overdue": bool(p["overdue"]),
                "grid": p["grid"],
                "grid_name": p["grid_name"],
                "department": p["department"],
                "level": p["resolution_level"],
                "description": p["description"],
                "at": f"{at:%m-%d %H:%M}",
            }
        )
    return rows


def my_reports(
    conn: Connection, r: PageRequest, user_id: int, masked: tuple[str, ...], timezone: str
) -> str:
    """Return 我的上报: the reports `user_id` sent, newest first, with their statuses."""
    scope = ReportScope(grids=(), reporter_id=user_id, masked_themes=masked)
    rows = _rows(conn, ReportFilter(scope=scope), r.lang, timezone)
    return render_template(
        "my_reports.html", rows=rows, words=LIST_WORDS[r.lang], **_phone_context(r)
    )


def checks(
    conn: Connection,
    r: PageRequest,
    grids: tuple[str, ...],
    masked: tuple[str, ...],
    timezone: str,
) -> str:
    """Return 核查任务: the resolved reports of `grids` waiting for the worker's check."""
    # reporter_id -1: a worker's own reports in other grids are not theirs to check.
    scope = ReportScope(grids=grids, reporter_id=-1, masked_themes=masked)
    # A fix made on the spot is checked by the desk, not by a worker (loop.check_move).
    f = ReportFilter(status=(S.RESOLVED.value,), on_site=False, scope=scope)
    rows = _rows(conn, f, r.lang, timezone)
    return render_template("checks.html", rows=rows, words=LIST_WORDS[r.lang], **_phone_context(r))


SERVICE_WORKER = WEB / "static" / "js" / "phone-sw.js"


def forbidden(r: PageRequest) -> str:
    """Return the page telling a user who is not a grid worker that the page is a worker's."""
    context = _context(r)
    user = context["nav"]["user"]
    words = FORBIDDEN_WORDS[r.lang]
    message = words["message"].replace("{name}", user["name"]).replace("{role}", user["role"])
    return render_template("forbidden.html", words=words, message=message, **context)
