"""The dispatcher's console (`/console`: queues, filters, bulk moves, placing and merging) and a
report's page (`/console/reports/{id}`: map, photos, history, stage clock, allowed moves),
rendered from web/templates/console*.html; their scripts are web/static/js/console*.js."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from geo.identity.scope import ReportScope
from geo.reports import queues, taxonomy
from geo.reports.queries import ReportFilter
from geo.reports.queues import Queue
from geo.settings import Settings
from geo.vocabulary import ReportStatus, Role
from web.pages import PageRequest
from web.status_names import STATUS_NAMES
from web.templating import ROLE_NAMES, lang_url, navigation, render_template

PAGE_SIZE = 50  # rows of a queue page: one screen's worth to tick through
CONSOLE_ROLES = (Role.DISPATCHER, Role.ADMIN)
S = ReportStatus

QUEUE_NAMES = {
    "zh": {
        Queue.NEW: "待受理",
        Queue.ACCEPTED: "待派遣",
        Queue.UNASSIGNED: "无网格",
        Queue.DUPLICATES: "疑似重复",
        Queue.RETURNED: "回退",
        Queue.OVERDUE: "超期",
        Queue.SUPERVISED: "督办",
    },
    "en": {
        Queue.NEW: "New",
        Queue.ACCEPTED: "To dispatch",
        Queue.UNASSIGNED: "No grid",
        Queue.DUPLICATES: "Possible duplicates",
        Queue.RETURNED: "Returned",
        Queue.OVERDUE: "Overdue",
        Queue.SUPERVISED: "Supervised (督办)",
    },
}
# What each move of the loop is called on its button, by (from, to).
MOVE_NAMES = {
    "zh": {
        (S.REPORTED, S.ACCEPTED): "受理（立案）",
        (S.REPORTED, S.REJECTED): "不予立案",
        (S.REPORTED, S.DUPLICATE): "合并为重复",
        (S.ACCEPTED, S.DISPATCHED): "派遣",
        (S.RETURNED, S.DISPATCHED): "重新派遣",
        (S.DISPATCHED, S.IN_PROGRESS): "开始处置",
        (S.DISPATCHED, S.RETURNED): "回退",
        (S.IN_PROGRESS, S.RESOLVED): "处置完成",
        (S.RESOLVED, S.VERIFIED): "核查通过",
        (S.RESOLVED, S.IN_PROGRESS): "返工",
    },
    "en": {
        (S.REPORTED, S.ACCEPTED): "Accept",
        (S.REPORTED, S.REJECTED): "Reject",
        (S.REPORTED, S.DUPLICATE): "Merge as duplicate",
        (S.ACCEPTED, S.DISPATCHED): "Dispatch",
        (S.RETURNED, S.DISPATCHED): "Dispatch again",
        (S.DISPATCHED, S.IN_PROGRESS): "Take up",
        (S.DISPATCHED, S.RETURNED): "Return (not ours)",
        (S.IN_PROGRESS, S.RESOLVED): "Resolved",
        (S.RESOLVED, S.VERIFIED): "Verified",
        (S.RESOLVED, S.IN_PROGRESS): "Send back for rework",
    },
}
# Ages a queue is filtered by: reported between `lo` and `hi` days ago (None: open end).
AGES: dict[str, tuple[int | None, int | None]] = {
    "1d": (None, 1),
    "3d": (1, 3),
    "7d": (3, 7),
    "older": (7, None),
}
AGE_NAMES = {
    "zh": {"1d": "24 小时内", "3d": "1–3 天", "7d": "3–7 天", "older": "7 天以上"},
    "en": {"1d": "last 24 hours", "3d": "1–3 days", "7d": "3–7 days", "older": "over 7 days"},
}
WORDS = {
    "zh": {
        "console": "调度台",
        "theme": "专题",
        "category": "类别",
        "district": "区县",
        "age": "时长",
        "any": "全部",
        "filter": "筛选",
        "reset": "清除",
        "select_all": "全选",
        "id": "编号",
        "reported_at": "上报时间",
        "what": "事件",
        "grid": "网格",
        "status": "状态",
        "due": "时限",
        "overdue": "已超期",
        "description": "描述",
        "none": "此队列暂无事件",
        "more": "下一页",
        "accept": "受理",
        "dispatch": "派遣",
        "dispatch_to": "派遣到",
        "default_department": "按类别默认部门",
        "any_handler": "不指定处置人",
        "selected": "已选 {n} 条",
        "pick_some": "请先勾选事件",
        "moved": "已办理 {moved} 条，失败 {failed} 条",
        "reload": "刷新队列",
        "place": "放置",
        "place_hint": "点选左侧事件，再在地图上点击网格",
        "place_to": "放置到网格 {code} {name}",
        "placed": "已放置到网格 {code}",
        "placing": "正在放置：{id}",
        "zoom_in": "请放大地图以显示网格",
        "original": "可能的原事件",
        "this_report": "本事件",
        "distance": "相距 {m} 米",
        "merge": "合并（重复）",
        "not_duplicate": "不是重复（受理）",
        "merged": "已合并为重复",
        "accepted": "已受理",
        "unseen_original": "原事件不在你的范围内",
        "return_reason": "回退原因",
        "supervision": "督办意见",
        "failed": "操作失败：",
        "masked": "（敏感专题，已脱敏）",
    },
    "en": {
        "console": "Dispatcher's console",
        "theme": "Theme",
        "category": "Category",
        "district": "District",
        "age": "Age",
        "any": "All",
        "filter": "Filter",
        "reset": "Clear",
        "select_all": "Select all",
        "id": "Id",
        "reported_at": "Reported",
        "what": "What",
        "grid": "Grid",
        "status": "Status",
        "due": "Due",
        "overdue": "overdue",
        "description": "Description",
        "none": "Nothing waits in this queue",
        "more": "Next page",
        "accept": "Accept",
        "dispatch": "Dispatch",
        "dispatch_to": "Dispatch to",
        "default_department": "the category's department",
        "any_handler": "no handler named",
        "selected": "{n} selected",
        "pick_some": "Tick some reports first",
        "moved": "{moved} done, {failed} failed",
        "reload": "Reload the queue",
        "place": "Place",
        "place_hint": "Pick a report in the list, then click its grid on the map",
        "place_to": "Place in grid {code} {name}",
        "placed": "Placed in grid {code}",
        "placing": "Placing: {id}",
        "zoom_in": "Zoom in to show the grids",
        "original": "Possible original",
        "this_report": "This report",
        "distance": "{m} m apart",
        "merge": "Merge (duplicate)",
        "not_duplicate": "Not a duplicate (accept)",
        "merged": "Merged as a duplicate",
        "accepted": "Accepted",
        "unseen_original": "The original lies outside your scope",
        "return_reason": "Why it was returned",
        "supervision": "Supervision note",
        "failed": "That did not work: ",
        "masked": "(sensitive theme, masked)",
    },
}


@dataclass(frozen=True)
class ConsoleQuery:
    """What the console is asked for: a queue and its filters (validated by the route)."""

    queue: Queue = Queue.NEW
    theme: str | None = None
    category: str | None = None
    district: str | None = None
    age: str | None = None
    cursor: str | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """Return the filters (not the queue, not the cursor) as query pairs."""
        named = {
            "theme": self.theme,
            "category": self.category,
            "district": self.district,
            "age": self.age,
        }
        return [(k, v) for k, v in named.items() if v]


def report_filter(q: ConsoleQuery, scope: ReportScope, now: datetime) -> ReportFilter:
    """Return the scope's filter narrowed to the console's theme, category, district and age."""
    lo, hi = AGES[q.age] if q.age else (None, None)
    return ReportFilter(
        theme=q.theme,
        category=q.category,
        district=q.district,
        since=now - timedelta(days=hi) if hi is not None else None,
        until=now - timedelta(days=lo) if lo is not None else None,
        scope=scope,
    )


def _url(path: str, pairs: list[tuple[str, str]], lang: str) -> str:
    return lang_url(path, urlencode(pairs), lang)


def when(value: datetime | str | None, zone: ZoneInfo) -> str:
    """Return a time as the console shows it: `2024-07-25 14:05` in the service's zone."""
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M}"


def category_name(theme: str, code: str, lang: str) -> str:
    """Return a category's name in `lang` (its code when the taxonomy has no such pair)."""
    cat = taxonomy.category(theme, code)
    return code if cat is None else (cat.zh if lang == "zh" else cat.en)


def _row(r: dict, lang: str, zone: ZoneInfo, originals: dict) -> dict:
    rid = str(r["id"])
    return {
        "id": rid,
        "short": rid[:8],
        "href": lang_url(f"/console/reports/{rid}", "", lang),
        "reported_at": when(r["reported_at"], zone),
        "what": category_name(r["theme"], r["category"], lang),
        "grid": r["grid_code"] or "",
        "grid_name": r["grid_name"] or "",
        "district": r["district_code"] or "",
        "status": str(r["status"]),
        "status_name": STATUS_NAMES[lang].get(r["status"], str(r["status"])),
        "due": when(r["due_at"], zone),
        "overdue": bool(r["overdue"]),
        "description": r["description"] or "",
        "masked": bool(r["masked"]),
        "lon": r["lon"],
        "lat": r["lat"],
        "return_reason": r["return_reason"] or "",
        "supervision_note": r["supervision_note"] or "",
        "original": _original(originals.get(rid), lang, zone),
    }


def _original(o: dict | None, lang: str, zone: ZoneInfo) -> dict | None:
    if o is None:
        return None
    oid = str(o["id"])
    return {
        "id": oid,
        "short": oid[:8],
        "href": lang_url(f"/console/reports/{oid}", "", lang),
        "reported_at": when(o["reported_at"], zone),
        "what": category_name(o["theme"], o["category"], lang),
        "status_name": STATUS_NAMES[lang].get(o["status"], str(o["status"])),
        "description": o["description"] or "",
        "grid": o["grid_code"] or "",
        "distance": None if o["distance_m"] is None else f"{float(o['distance_m']):g}",
        "photos": o["photos"],
        "dup_photos": o["dup_photos"],
    }


def _options(lang: str) -> dict:
    themes = [{"code": t.code, "name": t.zh if lang == "zh" else t.en} for t in taxonomy.THEMES]
    categories = [
        {"theme": t.code, "code": c.code, "name": c.zh if lang == "zh" else c.en}
        for t in taxonomy.THEMES
        for c in t.categories
    ]
    return {"themes": themes, "categories": categories}


def console(
    conn: Connection,
    q: ConsoleQuery,
    scope: ReportScope,
    settings: Settings,
    page: PageRequest,
) -> tuple[str, list[tuple[str, str]]]:
    """Return the console: queue tabs with counts, filters, one page of the queue, bulk moves;
    and the (id, theme) of each report it shows (for the audit of sensitive ones:
    geo.reports.reads)."""
    path, lang = page.path, page.lang
    now = datetime.now(UTC)
    zone = ZoneInfo(settings.worktime.timezone)
    narrowed = report_filter(q, scope, now)
    counts = queues.counts(conn, narrowed)
    found = queues.queue_page(conn, narrowed, q.queue, PAGE_SIZE, q.cursor)
    dup_ids = [r["id"] for r in found["rows"]] if q.queue == Queue.DUPLICATES else []
    originals = queues.originals(conn, dup_ids, scope)
    rows = [_row(r, lang, zone, originals) for r in found["rows"]]
    filters = q.pairs()
    tabs = [
        {
            "key": str(k),
            "label": QUEUE_NAMES[lang][k],
            "count": counts[str(k)],
            "href": _url(path, [("queue", str(k)), *filters], lang),
            "current": k == q.queue,
        }
        for k in Queue
    ]
    nxt = found["next_cursor"]
    words = WORDS[lang]
    shown = [(str(r["id"]), r["theme"]) for r in found["rows"]]
    shown += [(str(o["id"]), o["theme"]) for o in originals.values()]
    body = render_template(
        "console.html",
        lang=lang,
        nav=navigation(path, page.query, lang, page.session),
        words=words,
        queue=str(q.queue),
        queue_name=QUEUE_NAMES[lang][q.queue],
        tabs=tabs,
        q=q,
        options=_options(lang),
        districts=queues.districts(conn, scope),
        ages=AGE_NAMES[lang],
        clear_href=_url(path, [("queue", str(q.queue))], lang),
        rows=rows,
        next_href=_url(path, [("queue", str(q.queue)), *filters, ("cursor", nxt)], lang)
        if nxt
        else None,
        departments=sorted(taxonomy.departments(settings.reports.departments)),
        script={
            "words": words,
            "lang": lang,
            "queue": str(q.queue),
            "statuses": {str(k): v for k, v in STATUS_NAMES[lang].items()},
        },
        points=[
            {"id": r["id"], "short": r["short"], "lon": r["lon"], "lat": r["lat"]}
            for r in rows
            if r["lon"] is not None
        ]
        if q.queue == Queue.UNASSIGNED
        else [],
    )
    return body, shown


FORBIDDEN_WORDS = {
    "zh": {
        "title": "没有权限",
        "message": "你以 {name}（{role}）登录。调度台仅对指挥中心和管理员开放。",
        "what_next": "事件页面可从通知打开；如需使用调度台，"
        "请用有权限的账号登录或请管理员调整角色。",
    },
    "en": {
        "title": "Not allowed",
        "message": "You are logged in as {name} ({role}). The console is for dispatchers and "
        "administrators.",
        "what_next": "A report's page opens from your notifications; to use the console, log in "
        "with an account that has the right, or ask an administrator to change your role.",
    },
}


def forbidden(page: PageRequest) -> str:
    """Return the page telling a logged-in user that the console is not for their role (403)."""
    if page.session is None:
        raise ValueError("the console is forbidden to someone logged in: give the session")
    words = FORBIDDEN_WORDS[page.lang]
    role = ROLE_NAMES[page.lang].get(page.session.role, str(page.session.role))
    name = page.session.name or page.session.username
    return render_template(
        "forbidden.html",
        lang=page.lang,
        nav=navigation(page.path, page.query, page.lang, page.session),
        words=words,
        message=words["message"].format(name=name, role=role),
    )
