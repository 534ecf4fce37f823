"""The Jinja environment of every page and map panel, and the navigation they share.

Templates live in `web/templates/`, autoescaped; scripts and stylesheets in `web/static/`,
addressed through `static_url` so that a changed file is fetched anew.

The navigation names who is logged in, links to their notifications with the unread count,
and holds the logout form. Folium pages are built once
for everyone who sees the same data and cached, so theirs carry a slot that each request fills
with its own navigation and CSRF token (`with_session`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from geo.reports import taxonomy
from geo.vocabulary import NotificationKind, Role
from web.assets import WEB, static_url

NAV_LABEL = {"zh": "页面", "en": "Pages"}


LANGS = ("zh", "en")


COORDINATOR_PATH = "/maps/flood/coordinator"


# Who may open the flood coordinator's map: the roles that coordinate or dispatch.
COORDINATOR_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.DISPATCHER)


# (key, address, zh, en): the pages every page links to.
NAV = (
    ("index", "/", "首页", "Start"),
    ("dashboard", "/dashboard", "创安行动看板", "Dashboard"),
    ("campaigns", "/campaigns", "创安行动", "Campaigns"),
    ("maps", "/maps/all", "全部专题地图", "Theme maps"),
    ("coordinator", COORDINATOR_PATH, "汛期协调地图", "Flood coordinator"),
    ("report", "/report", "网格员上报", "Report"),
    ("checks", "/report/checks", "核查任务", "Checks"),
    ("console", "/console", "调度台", "Console"),
    ("inbox", "/inbox", "部门待办", "Inbox"),
    ("evaluation", "/evaluation", "综合评价", "Evaluation"),
    ("api", "/docs", "API", "API"),
)


# Pages for some roles only (a link to a page that answers 403 is no help).
NAV_ROLES = {
    "checks": (Role.WORKER,),
    "console": (Role.DISPATCHER, Role.ADMIN),
    "inbox": (Role.DEPARTMENT, Role.ADMIN),
    "evaluation": (Role.ADMIN, Role.PLANNER, Role.DISPATCHER, Role.DEPARTMENT, Role.WORKER),
}


LANG_NAMES = {"zh": "中文", "en": "English"}


ROLE_NAMES = {
    "zh": {
        Role.ADMIN: "管理员",
        Role.DISPATCHER: "指挥中心",
        Role.DEPARTMENT: "职能部门",
        Role.COORDINATOR: "汛期协调员",
        Role.PLANNER: "分析人员",
        Role.WORKER: "网格员",
    },
    "en": {
        Role.ADMIN: "administrator",
        Role.DISPATCHER: "dispatcher",
        Role.DEPARTMENT: "department",
        Role.COORDINATOR: "flood coordinator",
        Role.PLANNER: "planner",
        Role.WORKER: "grid worker",
    },
}


SESSION_WORDS = {
    "zh": {
        "logout": "退出登录",
        "logged_in": "当前登录",
        "notifications": "通知",
        "unread": "{n} 条未读",
    },
    "en": {
        "logout": "Log out",
        "logged_in": "Logged in",
        "notifications": "Notifications",
        "unread": "{n} unread",
    },
}


NOTIFICATIONS_PATH = "/notifications"
BADGE_CAP = 100  # the badge counts this many unread at most and shows "99+"
REPORT_PAGE = "/console/reports/{id}"  # a report's page: map, photos, history, actions
LETTER_PAGE = "/api/v1/letters/{id}?format=html"  # a letter as printed (its reply, its moves)


# What each notification kind says (geo.vocabulary.NotificationKind), on the notifications page.
NOTIFICATION_KINDS = {
    "zh": {
        NotificationKind.DISPATCHED: "派遣到本部门",
        NotificationKind.ASSIGNED: "指派给你处置",
        NotificationKind.RETURNED: "部门回退",
        NotificationKind.CHECK_TASK: "核查任务",
        NotificationKind.OVERDUE: "超期",
        NotificationKind.SUPERVISED: "督办",
        NotificationKind.RESOLVED: "已处置",
        NotificationKind.ESCALATED: "超期升级",
        NotificationKind.LETTER_ISSUED: "风险提示函已印发",
        NotificationKind.LETTER_ACKNOWLEDGED: "风险提示函已签收",
        NotificationKind.LETTER_REPLIED: "风险提示函已回复，待办结",
        NotificationKind.LETTER_CLOSED: "风险提示函已办结",
        NotificationKind.LETTER_OVERDUE: "风险提示函逾期未回复",
    },
    "en": {
        NotificationKind.DISPATCHED: "Dispatched to your department",
        NotificationKind.ASSIGNED: "Assigned to you",
        NotificationKind.RETURNED: "Returned by the department",
        NotificationKind.CHECK_TASK: "To check on site",
        NotificationKind.OVERDUE: "Overdue",
        NotificationKind.SUPERVISED: "Under supervision (督办)",
        NotificationKind.RESOLVED: "Resolved",
        NotificationKind.ESCALATED: "Escalated: overdue past the second limit",
        NotificationKind.LETTER_ISSUED: "Risk letter issued to your department",
        NotificationKind.LETTER_ACKNOWLEDGED: "Risk letter acknowledged",
        NotificationKind.LETTER_REPLIED: "Risk letter replied: to close",
        NotificationKind.LETTER_CLOSED: "Risk letter closed",
        NotificationKind.LETTER_OVERDUE: "Risk letter: reply overdue",
    },
}


NOTIFICATION_WORDS = {
    "zh": {
        "title": "通知",
        "all": "全部",
        "unread_only": "仅未读",
        "mark_all": "全部标为已读",
        "mark": "标为已读",
        "none": "暂无通知",
        "report": "事件 / 提示函",
        "due": "回复期限",
        "late": "逾期回复",
        "when": "时间",
        "what": "内容",
        "read": "已读",
        "older": "更早的通知",
        "failed": "操作失败，请刷新后重试",
    },
    "en": {
        "title": "Notifications",
        "all": "All",
        "unread_only": "Unread only",
        "mark_all": "Mark all as read",
        "mark": "Mark read",
        "none": "No notifications",
        "report": "Report / letter",
        "due": "reply due",
        "late": "replied late",
        "when": "When",
        "what": "What",
        "read": "read",
        "older": "Older notifications",
        "failed": "That did not work: reload the page and try again",
    },
}


def _letter_row(n: dict, lang: str, zone: ZoneInfo) -> dict:
    """A letter's notification: its number linking to the letter as printed, its subject and
    department, the reply's due time (when waiting for it) or a late reply."""
    data, words = n["data"], NOTIFICATION_WORDS[lang]
    what = [str(data.get(k) or "") for k in ("subject", "department")]
    if n["kind"] in (NotificationKind.LETTER_ISSUED, NotificationKind.LETTER_OVERDUE):
        if data.get("reply_due"):
            due = datetime.fromisoformat(data["reply_due"]).astimezone(zone)
            what.append(f"{words['due']} {due:%Y-%m-%d %H:%M}")
    if data.get("on_time") is False:
        what.append(words["late"])
    return {
        "report": data.get("number") or n["letter_id"][:8],
        "href": LETTER_PAGE.format(id=n["letter_id"]),
        "what": what,
    }


def _report_row(n: dict, lang: str) -> dict:
    """A report's notification: its id linking to its page, its category, grid, reason, note."""
    data = n["data"]
    cat = taxonomy.category(data.get("theme") or "", data.get("category") or "")
    what = [cat.zh if lang == "zh" else cat.en] if cat else [str(data.get("category") or "")]
    what += [str(data[k]) for k in ("grid", "reason", "note") if data.get(k)]
    return {
        "report": (n["report_id"] or "")[:8],
        "href": lang_url(REPORT_PAGE.format(id=n["report_id"]), "", lang)
        if n["report_id"]
        else None,
        "what": what,
    }


def notification_rows(found: dict, lang: str, timezone: str) -> list[dict]:
    """Return the notifications of `geo.reports.notify.notifications` as the page lists them:
    what happened, to which report or letter (a link to its page), when (in `timezone`), read
    or not."""
    zone = ZoneInfo(timezone)
    rows = []
    for n in found["notifications"]:
        about = _letter_row(n, lang, zone) if n.get("letter_id") else _report_row(n, lang)
        at = datetime.fromisoformat(n["created_at"]).astimezone(zone)
        rows.append(
            {
                "id": n["id"],
                "kind": NOTIFICATION_KINDS[lang].get(n["kind"], n["kind"]),
                **about,
                "what": " · ".join(w for w in about["what"] if w),
                "when": f"{at:%Y-%m-%d %H:%M}",
                "read": n["read_at"] is not None,
            }
        )
    return rows


# Where a cached Folium page takes the navigation of the request that shows it.
NAV_SLOT = Markup("<!-- riskgrid: navigation -->")


def _count(n: int) -> str:
    return f"{n:,}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


# Templates are read once per process, like the static files' hashes: a deployment restarts.
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(WEB / "templates"),
    autoescape=True,
    auto_reload=False,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


TEMPLATES.globals["static_url"] = static_url


TEMPLATES.filters["count"] = _count


TEMPLATES.filters["pct"] = _pct


def render_template(name: str, **context: object) -> str:
    """Return the template `name` (under web/templates) rendered with `context`, autoescaped."""
    return TEMPLATES.get_template(name).render(**context)


def clean_query(query: str) -> str:
    """Return a query string re-encoded from its parsed pairs: what a page writes into its links
    is percent-encoded, whatever raw bytes the request carried (`?x="><script>`)."""
    return urlencode(parse_qsl(query.lstrip("?"), keep_blank_values=True))


def lang_url(path: str, query: str, lang: str) -> str:
    """Return `path?query` with its language set to `lang` (zh, the default, is left out)."""
    pairs = [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True) if k != "lang"]
    if lang != "zh":
        pairs.append(("lang", lang))
    return f"{path}?{urlencode(pairs)}" if pairs else path


@dataclass(frozen=True)
class Session:
    """Who a page is shown to. `csrf` goes with a session cookie (the logout form and the page's
    scripts send it); it is empty for a page asked for with a bearer token, which has no cookie
    to log out of."""

    username: str
    name: str
    role: Role
    csrf: str = ""
    unread: int = 0  # notifications not yet read: the badge every page shows

    @property
    def opens_coordinator_map(self) -> bool:
        """Whether the flood coordinator's map is for this role."""
        return self.role in COORDINATOR_ROLES


@dataclass(frozen=True)
class NavLink:
    """One link of the navigation."""

    href: str
    label: str
    current: bool
    lang: str = ""  # the language of the label, when it is the language switch's


def _links(path: str, lang: str, session: Session) -> list[NavLink]:
    links = []
    for key, href, zh, en in NAV:
        if key == "coordinator" and not session.opens_coordinator_map:
            continue  # a link to a page that answers 403 is no help
        if key in NAV_ROLES and session.role not in NAV_ROLES[key]:
            continue
        if key == "maps":
            current = path.startswith("/maps/") and path != COORDINATOR_PATH
        else:
            current = path == href
        target = href if key == "api" else lang_url(href, "", lang)
        links.append(NavLink(target, zh if lang == "zh" else en, current))
    return links


def navigation(path: str, query: str, lang: str, session: Session | None) -> dict:
    """Return the navigation of a page at `path?query` shown to `session`: the links it may
    open, who is logged in with their unread notifications and the logout form, and the
    language switch that keeps the path
    and the query. Without a session (the login page) only the language switch is left."""
    languages = [
        NavLink(lang_url(path, query, code), LANG_NAMES[code], code == lang, code) for code in LANGS
    ]
    user = None
    if session is not None:
        shown = str(session.unread) if session.unread < BADGE_CAP else f"{BADGE_CAP - 1}+"
        user = {
            "username": session.username,
            "name": session.name or session.username,
            "role": ROLE_NAMES[lang].get(session.role, str(session.role)),
            "csrf": session.csrf,
            "unread": session.unread,
            "unread_shown": shown,
            "unread_words": SESSION_WORDS[lang]["unread"].replace("{n}", shown),
            "notifications": lang_url(NOTIFICATIONS_PATH, "", lang),
            "on_notifications": path == NOTIFICATIONS_PATH,
        }
    return {
        "label": NAV_LABEL[lang],
        "links": _links(path, lang, session) if session is not None else [],
        "languages": languages,
        "user": user,
        "logout": lang_url("/logout", "", lang),
        "words": SESSION_WORDS[lang],
    }


def with_session(page: str, nav: dict) -> str:
    """Return a Folium page, built and cached for everyone who sees the same data, with this
    request's navigation in its slot and the session's CSRF token in its head."""
    if NAV_SLOT not in page:
        raise ValueError("the page has no navigation slot: build it with maps/map_nav.html")
    # The slot lies in the body before the map's script, which holds all of the data: the
    # first occurrence is the one the template wrote.
    page = page.replace(NAV_SLOT, render_template("_nav.html", nav=nav), 1)
    return page.replace("<head>", "<head>\n" + render_template("_csrf.html", nav=nav), 1)
