"""The department inbox's page (`/inbox`): words zh/en, tasks as the page shows them (labels,
clock, age, the moves the viewer may make), the tabs, and the page itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from geo.identity.principal import Principal
from geo.reports import loop, taxonomy
from geo.settings import Settings
from geo.vocabulary import ReportStatus, Role
from web.pages import PageRequest
from web.status_names import status_names
from web.templating import REPORT_PAGE, lang_url, navigation, render_template

PAGE_SIZE = 50  # tasks per page: a department's day fits, the page stays light
INBOX_ROLES = (Role.DEPARTMENT, Role.ADMIN)
LEVEL_ITEMS = tuple(taxonomy.LEVELS.items())
# What web/static/js/inbox.js says while and after it makes a move.
SCRIPT_WORDS = ("uploading", "sending", "failed", "offline", "done_in_progress", "done_returned",
                "done_resolved")  # fmt: skip

WORDS = {
    "zh": {
        "title": "部门待办",
        "all": "全部",
        "mine": "我的",
        "unassigned": "未分配",
        "late": "超期 {n}",
        "supervised": "督办 {n}",
        "none": "暂无任务",
        "department": "部门",
        "all_departments": "全部部门",
        "show": "查看",
        "late_mark": "超期",
        "supervised_mark": "督办",
        "grid": "网格",
        "no_grid": "无网格",
        "handler": "处置人",
        "nobody": "未分配",
        "due": "时限",
        "age": "已上报",
        "rework": "返工 {n} 次",
        "returns": "回退 {n} 次",
        "detail": "详情",
        "take": "接收",
        "return": "回退",
        "resolve": "办结",
        "reason": "回退原因",
        "send_return": "确认回退",
        "level": "办结层级",
        "pick_level": "请选择",
        "note": "处置说明",
        "photo": "处置后照片",
        "photo_needed": "需上传处置后照片",
        "send_resolve": "确认办结",
        "read_only": "已办结，待核查",
        "masked": "敏感事件：描述已隐藏",
        "previous": "上一页",
        "next": "下一页",
        "page": "第 {n} 页",
        "uploading": "正在上传照片…",
        "sending": "正在提交…",
        "failed": "操作失败：{detail}",
        "offline": "网络中断，请稍后重试",
        "done_in_progress": "已接收：{id}",
        "done_returned": "已回退：{id}",
        "done_resolved": "已办结：{id}",
        "forbidden": "你以 {name}（{role}）登录。部门待办仅对职能部门用户和管理员开放。",
        "forbidden_title": "没有权限",
        "what_next": "如需查看，请用有权限的账号登录（先退出登录），或请管理员调整你的角色。",
    },
    "en": {
        "title": "Department inbox",
        "all": "All",
        "mine": "Mine",
        "unassigned": "Unassigned",
        "late": "{n} overdue",
        "supervised": "{n} under 督办",
        "none": "No tasks",
        "department": "Department",
        "all_departments": "All departments",
        "show": "Show",
        "late_mark": "Overdue",
        "supervised_mark": "督办",
        "grid": "Grid",
        "no_grid": "no grid",
        "handler": "Handler",
        "nobody": "nobody yet",
        "due": "Due",
        "age": "Reported",
        "rework": "reworked {n}×",
        "returns": "returned {n}×",
        "detail": "Details",
        "take": "Take up",
        "return": "Return",
        "resolve": "Resolve",
        "reason": "Why it is not ours",
        "send_return": "Return it",
        "level": "Resolved at",
        "pick_level": "Choose",
        "note": "What was done",
        "photo": "Photo of the fixed site",
        "photo_needed": "needs a photo of the fixed site",
        "send_resolve": "Mark resolved",
        "read_only": "Resolved, waiting for 核查",
        "masked": "Sensitive report: description hidden",
        "previous": "Previous",
        "next": "Next",
        "page": "page {n}",
        "uploading": "Uploading the photo…",
        "sending": "Sending…",
        "failed": "That did not work: {detail}",
        "offline": "Connection lost: try again in a moment",
        "done_in_progress": "Taken up: {id}",
        "done_returned": "Returned: {id}",
        "done_resolved": "Resolved: {id}",
        "forbidden": "You are logged in as {name} ({role}). The department inbox is for "
        "department users and administrators.",
        "forbidden_title": "Not allowed",
        "what_next": "To open it, log out and log in with an account that has the right, or ask "
        "an administrator to change your role.",
    },
}
STATUS_WORDS = {lang: status_names(lang, "department") for lang in ("zh", "en")}


def duration_words(d: timedelta, working: bool, lang: str) -> str:
    """Return a length of time in words: '3 天 2 小时', '4 工作时 30 分'; '3 d 2 h'."""
    minutes = int(abs(d).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if working:  # working time is counted in office hours: 7.5 of them make a 工作日
        hours, mins = minutes // 60, minutes % 60
        if lang == "zh":
            return f"{hours} 工作时 {mins} 分" if hours else f"{mins} 工作分钟"
        return f"{hours} working h {mins} min" if hours else f"{mins} working min"
    unit = {"zh": ("天", "小时", "分钟"), "en": ("d", "h", "min")}[lang]
    if days:
        return f"{days} {unit[0]} {hours} {unit[1]}"
    return f"{hours} {unit[1]} {mins} {unit[2]}" if hours else f"{mins} {unit[2]}"


def left_words(left: timedelta | None, working: bool, lang: str) -> str:
    """Return the clock of a task's stage: '剩 4 工作时 30 分' or '超期 1 天 2 小时'."""
    if left is None:
        return ""
    span = duration_words(left, working, lang)
    if left < timedelta(0):
        return f"超期 {span}" if lang == "zh" else f"overdue by {span}"
    return f"剩 {span}" if lang == "zh" else f"{span} left"


def _category(theme: str, code: str, lang: str) -> str:
    cat = taxonomy.category(theme, code)
    return (cat.zh if lang == "zh" else cat.en) if cat else code


def _row(t: dict, who: Principal, settings: Settings, lang: str) -> dict:
    """One task as the page shows it: labels, clock, age, and the moves `who` may make."""
    zone = ZoneInfo(settings.worktime.timezone)
    moves = loop.moves_for(who, {"status": t["status"], "grid": {"code": t["grid_code"]}})
    now: datetime = t["now"]
    # A resolved task's clock is the 核查's: the checker's, not the department's.
    waiting = t["status"] == ReportStatus.RESOLVED
    return {
        "id": str(t["id"]),
        "short": str(t["id"])[:8],
        "href": lang_url(REPORT_PAGE.format(id=t["id"]), "", lang),
        "category": _category(t["theme"], t["category"], lang),
        "status": str(t["status"]),
        "status_words": STATUS_WORDS[lang].get(t["status"], str(t["status"])),
        "grid": t["grid_code"],
        "grid_name": t["grid_name"],
        "department": t["department"],
        "handler": t["handler"],
        "late": t["late"],
        "supervised": t["supervised"] and not waiting,
        "supervision_note": t["supervision_note"],
        "due": f"{t['due_at'].astimezone(zone):%m-%d %H:%M}" if t["due_at"] and not waiting else "",
        "left": "" if waiting else left_words(t["time_left"], t["working"], lang),
        "age": duration_words(now - t["reported_at"], False, lang),
        "rework_count": t["rework_count"],
        "return_count": t["return_count"],
        "description": t["description"],
        "masked": t["masked"],
        "moves": {m["to"] for m in moves},
        "needs_photo": t["theme"] not in settings.photos.after_not_required,
    }


def _tabs(page_path: str, lang: str, assigned: str, extra: dict, counts: dict) -> list[dict]:
    words = WORDS[lang]
    return [
        {
            "key": key,
            "label": words[key],
            "count": counts[key],
            "current": key == assigned,
            "href": lang_url(page_path, urlencode({**extra, "assigned": key}), lang),
        }
        for key in ("all", "mine", "unassigned")
    ]


def forbidden(page: PageRequest) -> str:
    """Return the page a role without an inbox gets (answered 403)."""
    words = WORDS[page.lang]
    nav = navigation(page.path, page.query, page.lang, page.session)
    user = nav["user"]
    message = words["forbidden"].replace("{name}", user["name"]).replace("{role}", user["role"])
    return render_template(
        "forbidden.html",
        lang=page.lang,
        nav=nav,
        words={"title": words["forbidden_title"], "what_next": words["what_next"]},
        message=message,
    )


def inbox_page(
    page: PageRequest,
    who: Principal,
    settings: Settings,
    counts: dict,
    found: list[dict],
    n: int,
    assigned: str,
    chosen: str | None,
    departments: list[str],
) -> str:
    """Return the inbox page: tabs with counts, a page of tasks (`found` holds one more than a
    page when another follows), the level choices, and the admin's department picker."""
    extra = {"department": chosen} if chosen else {}
    here = {**extra, "assigned": assigned}

    def page_href(k: int) -> str:
        return lang_url(page.path, urlencode({**here, "n": k}), page.lang)

    words = WORDS[page.lang]
    return render_template(
        "inbox.html",
        lang=page.lang,
        nav=navigation(page.path, page.query, page.lang, page.session),
        words=words,
        tabs=_tabs(page.path, page.lang, assigned, extra, counts),
        counts=counts,
        tasks=[_row(t, who, settings, page.lang) for t in found[:PAGE_SIZE]],
        levels=[(str(k), w[0] if page.lang == "zh" else w[1]) for k, w in LEVEL_ITEMS],
        departments=departments if who.role == Role.ADMIN else [],
        department=chosen or "",
        assigned=assigned,
        page_words=words["page"].replace("{n}", str(n)),
        previous_href=page_href(n - 1) if n > 1 else None,
        next_href=page_href(n + 1) if len(found) > PAGE_SIZE else None,
        action=page.path,
        script_words={k: words[k] for k in SCRIPT_WORDS},
    )
