"""A report's page (`/console/reports/{id}`): its point and grid on a map, photos with their
EXIF checks, the history as a timeline, the clock of the current stage, and the forms of only
the moves the viewer may make now (web/templates/console_report.html, js/console-report.js)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from geo.reports import deadlines, taxonomy
from geo.settings import Settings
from geo.vocabulary import OPEN_STATUSES, Role
from geo.worktime import Unit
from web.console import MOVE_NAMES, category_name, when
from web.pages import PageRequest
from web.status_names import STATUS_NAMES
from web.templating import lang_url, navigation, render_template

UNITS = {
    "zh": {
        Unit.WORKING_HOURS: "工作时",
        Unit.WORKING_DAYS: "工作日",
        Unit.CALENDAR_HOURS: "小时",
        Unit.CALENDAR_DAYS: "自然日",
    },
    "en": {
        Unit.WORKING_HOURS: "working hours",
        Unit.WORKING_DAYS: "working days",
        Unit.CALENDAR_HOURS: "hours",
        Unit.CALENDAR_DAYS: "calendar days",
    },
}
WORDS = {
    "zh": {
        "title": "事件",
        "console": "返回调度台",
        "category": "类别",
        "status": "状态",
        "description": "描述",
        "reporter": "上报人",
        "reported_at": "上报时间",
        "grid": "网格",
        "no_grid": "无网格",
        "district": "区县",
        "department": "责任部门",
        "handler": "处置人",
        "due": "本阶段时限",
        "clock": "本阶段",
        "left": "剩余 {n} {unit}",
        "over": "超期 {n} {unit}",
        "no_clock": "已办结，无时限",
        "counts": "回退 {returns} 次 · 返工 {reworks} 次",
        "possible_duplicate": "可能重复于",
        "duplicate_of": "重复于",
        "supervised": "督办中",
        "photos": "照片",
        "no_photos": "暂无照片",
        "exif_distance": "拍摄点距上报点 {m} 米",
        "no_exif": "照片无定位信息",
        "history": "办理记录",
        "received": "上报",
        "reassigned": "改派网格 {frm} → {to}",
        "supervision_set": "督办",
        "supervision_lifted": "解除督办",
        "actions": "可办理",
        "no_actions": "你现在没有可办理的操作",
        "reason": "原因",
        "note": "备注（可选）",
        "level": "办结层级",
        "to_department": "派遣部门",
        "to_handler": "处置人",
        "any_handler": "不指定处置人",
        "original_id": "原事件编号",
        "supervise": "督办",
        "supervise_note": "督办意见",
        "lift": "解除督办",
        "failed": "操作失败：",
        "masked": "敏感专题：位置、描述和上报人已隐藏",
        "not_found": "没有这个事件，或它不在你的范围内。",
        "not_found_title": "未找到",
        "back": "返回首页",
    },
    "en": {
        "title": "Report",
        "console": "Back to the console",
        "category": "Category",
        "status": "Status",
        "description": "Description",
        "reporter": "Reported by",
        "reported_at": "Reported",
        "grid": "Grid",
        "no_grid": "no grid",
        "district": "District",
        "department": "Department",
        "handler": "Handler",
        "due": "Stage due",
        "clock": "This stage",
        "left": "{n} {unit} left",
        "over": "overdue by {n} {unit}",
        "no_clock": "closed: no time limit",
        "counts": "returned {returns} × · reworked {reworks} ×",
        "possible_duplicate": "Possibly a duplicate of",
        "duplicate_of": "Duplicate of",
        "supervised": "Under supervision (督办)",
        "photos": "Photos",
        "no_photos": "No photos",
        "exif_distance": "taken {m} m from the reported point",
        "no_exif": "no position in the photo",
        "history": "History",
        "received": "reported",
        "reassigned": "moved to another grid {frm} → {to}",
        "supervision_set": "supervision set (督办)",
        "supervision_lifted": "supervision lifted",
        "actions": "What you may do",
        "no_actions": "There is nothing for you to do on this report now",
        "reason": "Reason",
        "note": "Note (optional)",
        "level": "Resolved at level",
        "to_department": "Department",
        "to_handler": "Handler",
        "any_handler": "no handler named",
        "original_id": "Id of the original",
        "supervise": "Supervise (督办)",
        "supervise_note": "Supervision note",
        "lift": "Lift supervision",
        "failed": "That did not work: ",
        "masked": "Sensitive theme: point, description and reporter are hidden",
        "not_found": "There is no such report, or it lies outside what you may see.",
        "not_found_title": "Not found",
        "back": "Back to the start page",
    },
}
_UNIT_LENGTH = {
    Unit.WORKING_HOURS: timedelta(hours=1),
    Unit.CALENDAR_HOURS: timedelta(hours=1),
    Unit.CALENDAR_DAYS: timedelta(days=1),
}


def stage_clock(report: dict, settings: Settings, now: datetime, lang: str) -> dict | None:
    """Return the clock of the report's current stage in its limit's unit ("剩余 3.5 工作时",
    "超期 2 工作日") with whether it is over; None for a closed report."""
    theme, category, stage = report["theme"], report["category"], report["status"]
    limit = deadlines.limit_for(theme, category, stage, settings.reports)
    due = datetime.fromisoformat(report["due_at"]) if report["due_at"] else None
    left = deadlines.time_left_for(
        theme, category, stage, due, now, settings.reports, settings.worktime
    )
    if limit is None or left is None:
        return None
    cal = deadlines.calendar(settings.worktime)
    unit = _UNIT_LENGTH.get(limit.unit, cal.day_length)
    amount = f"{round(abs(left) / unit, 1):g}"
    over = left < timedelta(0)
    text = WORDS[lang]["over" if over else "left"]
    return {"text": text.format(n=amount, unit=UNITS[lang][limit.unit]), "over": over}


def _step(e: dict, lang: str, zone: ZoneInfo) -> dict:
    w, names = WORDS[lang], STATUS_NAMES[lang]
    kind = e["kind"]
    if kind == "reported":
        what = w["received"]
    elif kind == "reassigned":
        what = w["reassigned"].format(frm=e["from_grid"] or "—", to=e["to_grid"] or "—")
    elif kind in ("supervised", "supervision_lifted"):
        what = w["supervision_set" if kind == "supervised" else "supervision_lifted"]
    else:
        what = f"{names.get(e['from_status'], e['from_status'])} → {names.get(e['to_status'])}"
    extra = [e[k] for k in ("department", "handler") if e.get(k)]
    note = None if kind == "reported" else e["note"]
    return {
        "kind": kind,
        "when": when(e["at"], zone),
        "who": e["actor"] or "",
        "what": what,
        "extra": " · ".join(extra),
        "reason": e["reason"] or "",
        "note": note or "",
    }


def _moves(report: dict, lang: str) -> list[dict]:
    frm = report["status"]
    return [
        {
            "to": m["to"],
            "label": MOVE_NAMES[lang].get((frm, m["to"]), m["to"]),
            "needs": m["needs"],
            "dispatch": m["to"] == "dispatched",
        }
        for m in report["moves"]
    ]


def report_page(report: dict, settings: Settings, page: PageRequest) -> str:
    """Return the page of one report as the viewer sees it (its `moves` are theirs)."""
    lang = page.lang
    if page.session is None:
        raise ValueError("a report's page is shown to someone logged in: give the session")
    zone = ZoneInfo(settings.worktime.timezone)
    grid = report["grid"]
    is_dispatcher = page.session.role in taxonomy.SUPERVISE_ROLES
    levels = [{"code": str(k), "name": zh if lang == "zh" else en}
              for k, (zh, en) in taxonomy.LEVELS.items()]  # fmt: skip
    return render_template(
        "console_report.html",
        lang=lang,
        nav=navigation(page.path, page.query, lang, page.session),
        words=WORDS[lang],
        r=report,
        what=category_name(report["theme"], report["category"], lang),
        status_name=STATUS_NAMES[lang].get(report["status"], report["status"]),
        reported_at=when(report["reported_at"], zone),
        due=when(report["due_at"], zone),
        clock=stage_clock(report, settings, datetime.now(UTC), lang),
        history=[_step(e, lang, zone) for e in report["history"]],
        moves=_moves(report, lang),
        levels=levels,
        departments=sorted(taxonomy.departments(settings.reports.departments)),
        supervise=is_dispatcher and report["status"] in OPEN_STATUSES,
        console_href=lang_url("/console", "", lang)
        if page.session.role in (Role.DISPATCHER, Role.ADMIN)
        else None,
        link=lambda rid: lang_url(f"/console/reports/{rid}", "", lang),
        map={
            "lon": report["lon"],
            "lat": report["lat"],
            "grid": grid["code"] if grid else None,
        },
        script={"words": WORDS[lang], "id": report["id"]},
    )


def not_found(page: PageRequest) -> str:
    """Return the page that says there is no such report for this viewer (answered with 404)."""
    w = WORDS[page.lang]
    return render_template(
        "forbidden.html",
        lang=page.lang,
        nav=navigation(page.path, page.query, page.lang, page.session),
        words={"title": w["not_found_title"], "what_next": ""},
        message=w["not_found"],
    )
