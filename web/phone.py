"""The grid worker's phone pages: 上报 (the report form with photos), 走访 (a campaign visit:
its checklist answered, the hazards found), 我的上报 (the reports they sent, with statuses) and
核查任务 (resolved reports of their grids to verify or send back as rework). Each works
offline: a service worker (js/phone-sw.js) keeps the last copy of each page, and what the
worker does waits on the phone until it can be sent (js/phone-offline.js)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection

from geo.cache import Versions
from geo.campaigns import checklist, visits
from geo.campaigns.checklist import AnswerKind
from geo.errors import InvalidInput
from geo.grids.layer import grid_layer
from geo.identity.principal import Principal
from geo.identity.scope import ReportScope
from geo.reports import queries, taxonomy
from geo.reports.queries import ReportFilter
from geo.vocabulary import ReportStatus, Role
from web.assets import WEB, static_url
from web.pages import LABELS, REPORT_WORDS, PageRequest, town_centre
from web.status_names import status_names
from web.templating import lang_url, navigation, render_template

MINE_PATH = "/report/mine"
CHECKS_PATH = "/report/checks"
VISIT_PATH = "/report/visit"
# A phone lists this many rows: a worker's last weeks; older reports are on the console.
LIST_LIMIT = 50

# What the service worker keeps at the first visit, for a phone that goes offline before it
# has opened every tab: the four pages (the tabs' addresses), their files and the taxonomy.
# A visit's campaigns and checklists are in its page; its targets are kept as they are asked.
OFFLINE_ASSETS = (
    "css/base.css",
    "css/report.css",
    "js/session.js",
    "js/photo-queue.js",
    "js/phone-offline.js",
    "js/report.js",
    "js/checks.js",
    "js/visit.js",
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
# What the report page says of the visits its sending took along (js/phone-offline.js).
QUEUE_WORDS = {
    "zh": {
        "visits_sent": "已补发 {n} 条走访记录",
        "visits_refused": "{n} 条走访未被接受，请在走访页查看原因",
    },
    "en": {
        "visits_sent": "{n} offline visits sent",
        "visits_refused": "{n} visits were not taken: the Visits tab says why",
    },
}
TAB_WORDS = {
    "zh": {"report": "上报", "visit": "走访", "mine": "我的上报", "checks": "核查任务"},
    "en": {"report": "Report", "visit": "Visits", "mine": "My reports", "checks": "Checks"},
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
# The visit form's words (its script fills in {name}), beside those it shares with the report
# form (VISIT_SHARED, from web.pages.REPORT_WORDS and PHOTO_WORDS).
VISIT_WORDS = {
    "zh": {
        "heading": "走访排查",
        "campaign": "创安行动",
        "no_campaign": "你所在辖区当前没有进行中的创安行动，暂无可记录的走访",
        "period": "{starts} 至 {ends}",
        "checklist": "排查清单",
        "yes": "是",
        "no": "否",
        "required": "必答",
        "target": "走访对象",
        "no_target": "不指定走访对象",
        "targets_none": "你的网格内已没有待走访的对象",
        "targets_offline": "离线：走访对象名单需联网后加载",
        "leaflets": "发放宣传单 (份)",
        "stickers": "张贴提示贴 (张)",
        "hazards": "发现的隐患",
        "add_hazard": "添加一处隐患",
        "hazard": "隐患 {n}",
        "remove_hazard": "删除此隐患",
        "hazard_description": "隐患描述",
        "hazard_photo": "隐患照片",
        "visit_photo": "走访照片 (现场、入户)",
        "visitor": "走访人",
        "send": "提交走访",
        "need_campaign": "请先选择创安行动",
        "need_answer": "请回答必答项：{label}",
        "bad_number": "“{label}”请填写 0 到 1,000,000,000 之间的数字",
        "whole_number": "“{label}”请填写整数",
        "bad_count": "“{label}”请填写 0 到 1,000,000 之间的整数",
        "need_category": "隐患 {n}：请选择类别",
        "kept": "走访已保存在手机上，正在发送…",
        "offline": "当前离线，走访已保存，联网后自动发送",
        "dropped": "网络中断，走访已保存，联网后自动发送",
        "sent_one": "走访已记录：网格 {code} {name}",
        "sent_unassigned": "走访已记录，暂未匹配网格 (待人工分派)",
        "sent_target": "走访对象 {ref} 已记为已走访",
        "sent_hazards": "发现的隐患 {n} 处已上报",
        "visits_sent": "已发送 {n} 条走访记录",
        "outbox": "待发送走访 {n} 条 (联网后自动发送)",
        "refused_heading": "未被接受的走访 ({n} 条，不会自动重发)",
        "refused_detail": "未被接受 (HTTP {status})：{detail}",
        "refused_now": "{n} 条走访未被接受，原因见下方",
        "refused_what": "{campaign} · {at}{target}",
        "dismiss": "删除此条",
        "login_again": "登录已失效：待发送的走访保存在手机上，重新登录后自动发送。",
        "not_mine": "此浏览器当前登录的不是 {user}：待发送的走访保存在手机上，"
        "请以 {user} 重新登录。",
        "log_in": "重新登录",
        "saved_at": "离线副本，保存于 {at}",
    },
    "en": {
        "heading": "Campaign visit",
        "campaign": "Campaign",
        "no_campaign": "No campaign is running in your districts: there is no visit to record",
        "period": "{starts} to {ends}",
        "checklist": "Checklist",
        "yes": "Yes",
        "no": "No",
        "required": "required",
        "target": "Visiting",
        "no_target": "No target from the list",
        "targets_none": "No targets left to visit in your grids",
        "targets_offline": "Offline: the target list loads once the phone is back online",
        "leaflets": "Leaflets handed out",
        "stickers": "Stickers put up",
        "hazards": "Hazards found",
        "add_hazard": "Add a hazard",
        "hazard": "Hazard {n}",
        "remove_hazard": "Remove this hazard",
        "hazard_description": "What is wrong",
        "hazard_photo": "Photos of the hazard",
        "visit_photo": "Photos of the visit (the place, the home)",
        "visitor": "Visited by",
        "send": "Send the visit",
        "need_campaign": "Choose a campaign first",
        "need_answer": "Answer the required item: {label}",
        "bad_number": "“{label}”: enter a number from 0 to 1,000,000,000",
        "whole_number": "“{label}”: enter a whole number",
        "bad_count": "“{label}”: enter a whole number from 0 to 1,000,000",
        "need_category": "Hazard {n}: choose a category",
        "kept": "The visit is kept on the phone: sending…",
        "offline": "Offline: the visit is kept, sent when back online",
        "dropped": "Connection lost: the visit is kept, sent when back online",
        "sent_one": "Visit recorded: grid {code} {name}",
        "sent_unassigned": "Visit recorded; no grid matched yet (assigned by hand)",
        "sent_target": "{ref} is marked visited",
        "sent_hazards": "{n} hazards found were reported",
        "visits_sent": "{n} visits sent",
        "outbox": "{n} visits waiting (sent when back online)",
        "refused_heading": "Visits not taken ({n}; not sent again)",
        "refused_detail": "Not taken (HTTP {status}): {detail}",
        "refused_now": "{n} visits were not taken: see why below",
        "refused_what": "{campaign} · {at}{target}",
        "dismiss": "Remove",
        "login_again": "Your login has ended: the visits waiting are kept on the phone and sent "
        "once you log in again.",
        "not_mine": "This browser is logged in as someone else than {user}: the visits waiting "
        "are kept; log in as {user}.",
        "log_in": "Log in again",
        "saved_at": "Offline copy, saved {at}",
    },
}
VISIT_SHARED = (
    "theme",
    "category",
    "position",
    "gps",
    "lon",
    "lat",
    "no_position",
    "no_gps",
    "located",
    "gps_failed",
    "flushed",
    "refused",
    "photos_waiting",
    "photos_sent",
    "photos_kept",
    "photo_not_kept",
)
FORBIDDEN_WORDS = {
    "zh": {
        "title": "没有权限",
        "message": "你以 {name}（{role}）登录。此页面是网格员的核查和上报记录。",
        "what_next": "如需查看，请用网格员账号登录（先退出登录），或请管理员调整你的角色。",
        "visit_message": "你以 {name}（{role}）登录。走访排查由网格员在现场记录。",
    },
    "en": {
        "title": "Not allowed",
        "message": "You are logged in as {name} ({role}). This page is a grid worker's.",
        "what_next": "To open it, log out and log in as a grid worker, or ask an administrator "
        "to change your role.",
        "visit_message": "You are logged in as {name} ({role}). Campaign visits are recorded on "
        "site by grid workers.",
    },
}


def _tabs(r: PageRequest) -> list[dict]:
    words = TAB_WORDS[r.lang]
    return [
        {"href": lang_url(path, "", r.lang), "label": words[key], "current": r.path == path}
        for key, path in (
            ("report", "/report"),
            ("visit", VISIT_PATH),
            ("mine", MINE_PATH),
            ("checks", CHECKS_PATH),
        )
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
    words = {**REPORT_WORDS[r.lang], **PHOTO_WORDS[r.lang], **QUEUE_WORDS[r.lang]}
    return render_template("report.html", words=words, centre=centre, user=user, **ctx)


def _campaign(c: dict, lang: str) -> dict:
    """Return a campaign as the visit form shows it: name, theme, period and checklist."""
    words = VISIT_WORDS[lang]
    items = [
        {**item.as_dict(), "whole": item.tally is not None}
        for item in checklist.parse(c["checklist"] or [])
    ]
    period = words["period"].replace("{starts}", str(c["starts_on"]))
    return {
        "code": c["code"],
        "name": c["name"],
        "theme": c["theme"],
        "categories": list(c["categories"] or []),
        "period": period.replace("{ends}", str(c["ends_on"])),
        "targets": (c["targets"] or {}).get("register"),
        "checklist": items,
    }


def visit(conn: Connection, r: PageRequest, who: Principal) -> str:
    """Return 走访 (the visit form): the launched campaigns `who` visits for with their
    checklists, a target from their list, position, outreach, hazards found with photos."""
    ctx = _phone_context(r)
    campaigns = [_campaign(c, r.lang) for c in visits.campaigns_for(conn, who)]
    shared = {**REPORT_WORDS[r.lang], **PHOTO_WORDS[r.lang]}
    words = {**{k: shared[k] for k in VISIT_SHARED}, **VISIT_WORDS[r.lang]}
    user = {"username": who.username, "name": who.name or who.username}
    # A worker picks from their own list of targets to visit (todo=mine); an admin visits
    # without one, as the list is a worker's.
    targets = "mine" if who.role == Role.WORKER else ""
    return render_template(
        "visit.html",
        words=words,
        campaigns=campaigns,
        kinds={k.name.lower(): k.value for k in AnswerKind},
        targets=targets,
        user=user,
        **ctx,
    )


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
                "theme": p["theme"],
                "at": f"{at:%m-%d %H:%M}",
            }
        )
    return rows


def my_reports(
    conn: Connection, r: PageRequest, user_id: int, masked: tuple[str, ...], timezone: str
) -> tuple[str, list[tuple[str, str]]]:
    """Return 我的上报: the reports `user_id` sent, newest first, with their statuses; and the
    (id, theme) of each report shown (for the audit of sensitive ones: geo.reports.reads)."""
    scope = ReportScope(grids=(), reporter_id=user_id, masked_themes=masked)
    rows = _rows(conn, ReportFilter(scope=scope), r.lang, timezone)
    body = render_template(
        "my_reports.html", rows=rows, words=LIST_WORDS[r.lang], **_phone_context(r)
    )
    return body, [(row["id"], row["theme"]) for row in rows]


def checks(
    conn: Connection,
    r: PageRequest,
    grids: tuple[str, ...],
    masked: tuple[str, ...],
    timezone: str,
) -> tuple[str, list[tuple[str, str]]]:
    """Return 核查任务: the resolved reports of `grids` waiting for the worker's check; and the
    (id, theme) of each report shown (for the audit of sensitive ones: geo.reports.reads)."""
    # reporter_id -1: a worker's own reports in other grids are not theirs to check.
    scope = ReportScope(grids=grids, reporter_id=-1, masked_themes=masked)
    # A fix made on the spot is checked by the desk, not by a worker (loop.check_move).
    f = ReportFilter(status=(S.RESOLVED.value,), on_site=False, scope=scope)
    rows = _rows(conn, f, r.lang, timezone)
    body = render_template("checks.html", rows=rows, words=LIST_WORDS[r.lang], **_phone_context(r))
    return body, [(row["id"], row["theme"]) for row in rows]


SERVICE_WORKER = WEB / "static" / "js" / "phone-sw.js"


def forbidden(r: PageRequest, what: str = "message") -> str:
    """Return the page telling a user who is not a grid worker that the page is a worker's
    (`what`: the words saying whose: `message`, or `visit_message` for the visit form)."""
    context = _context(r)
    user = context["nav"]["user"]
    words = FORBIDDEN_WORDS[r.lang]
    message = words[what].replace("{name}", user["name"]).replace("{role}", user["role"])
    return render_template("forbidden.html", words=words, message=message, **context)
