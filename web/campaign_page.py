"""The campaign pages: `/campaigns` (every campaign, linked) and `/campaigns/{code}` (its
definition, the figures a bulletin quotes, charts of its progress day by day and district by
district, a map of the grids it has reached and the checklist), for every logged-in role.

Charts are drawn by web/static/js/charts.js from the series written here into `data-series`;
the map (web/static/js/campaign.js) reads the coverage API, which applies its own rules (the
household counts a role may not see are withheld there).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from itertools import accumulate
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from geo.campaigns import progress, store
from geo.campaigns.checklist import AnswerKind, Tally
from geo.campaigns.lifecycle import CampaignStatus
from geo.identity.scope import EVERYTHING
from geo.reports import queues, taxonomy
from geo.vocabulary import Role
from web.pages import PageRequest
from web.templating import lang_url, navigation, render_template

LIST_PATH = "/campaigns"
PAGE_PATH = "/campaigns/{code}"
API = "/api/v1/campaigns/{code}"
TODO_LIMIT = 200  # a worker's to-visit list on the page: a day's round or two

# The figures a bulletin quotes, in the order it quotes them (progress totals' keys).
TOTALS = ("visits", "hazards_found", "hazards_resolved", "relocations", "leaflets", "stickers")
# The words the map's script shows (web/static/js/campaign.js).
MAP_WORDS = ("visited", "unvisited", "loading", "map_failed", "grid", "grid_code", "last_visit")
MAP_WORDS += ("s_visits", "s_targets", "todo_none", "todo_more", "s_district")
MAP_WORDS += ("grids_visited", "targets_visited")

WORDS = {
    "zh": {
        "campaigns": "创安行动",
        "code": "编号",
        "name": "名称",
        "theme": "专题",
        "period": "时间",
        "status": "状态",
        "districts": "区县",
        "partners": "协同部门",
        "targets": "走访对象",
        "no_targets": "无（全部网格）",
        "none": "暂无创安行动",
        "not_found_title": "没有这项创安行动",
        "not_found": "没有编号为 {code} 的创安行动。",
        "back": "返回创安行动列表",
        "days": "{n} 天",
        "figures": "主要数据",
        "visits": "走访（次）",
        "hazards_found": "发现隐患（处）",
        "hazards_resolved": "已整改隐患（处）",
        "relocations": "转移群众（人）",
        "relocated_households": "转移 {n} 户",
        "leaflets": "发放宣传单（份）",
        "stickers": "张贴反光贴（张）",
        "resolved_share": "整改率 {pct}",
        "daily": "每日走访",
        "daily_hazards": "每日隐患",
        "by_district": "分区县情况",
        "day": "日期",
        "district": "区县",
        "visits_day": "当日走访",
        "visits_total": "累计走访",
        "found_day": "当日发现隐患",
        "resolved_day": "当日整改",
        "found_total": "累计发现隐患",
        "resolved_total": "累计整改",
        "axis_day_visits": "当日走访（次）",
        "axis_total_visits": "累计走访（次）",
        "axis_day_hazards": "当日隐患（处）",
        "axis_total_hazards": "累计隐患（处）",
        "axis_count": "数量（次/处/人）",
        "s_visits": "走访",
        "s_found": "发现隐患",
        "s_resolved": "已整改",
        "s_relocated": "转移群众",
        "s_targets": "走访对象",
        "s_district": "区县",
        "no_district": "未匹配网格",
        "unit_visits": "次",
        "unit_hazards": "处",
        "coverage": "走访覆盖",
        "grids_visited": "已走访网格",
        "targets_visited": "已走访对象",
        "visited": "已走访",
        "unvisited": "未走访",
        "unvisited_only": "只显示未走访网格",
        "loading": "正在加载网格…",
        "map_failed": "网格地图加载失败：",
        "grid": "网格",
        "grid_code": "编号",
        "last_visit": "最近走访",
        "withheld": "（少于 {k} 户，不显示）",
        "checklist": "排查清单",
        "item": "排查项",
        "answer": "回答",
        "required": "必答",
        "counts_as": "计入",
        "yes": "是",
        "todo": "我的待走访对象",
        "todo_none": "你的网格内没有待走访对象",
        "todo_more": "共 {n} 个，显示前 {shown} 个",
        "address": "地址",
        "map_link": "在专题地图上查看本行动的事件",
        "no_progress": "尚无走访记录",
    },
    "en": {
        "campaigns": "Campaigns",
        "code": "Code",
        "name": "Name",
        "theme": "Theme",
        "period": "Dates",
        "status": "Status",
        "districts": "Districts",
        "partners": "Partner departments",
        "targets": "Targets",
        "no_targets": "none (every grid)",
        "none": "No campaigns yet",
        "not_found_title": "No such campaign",
        "not_found": "There is no campaign with the code {code}.",
        "back": "Back to the campaigns",
        "days": "{n} days",
        "figures": "Figures",
        "visits": "Visits",
        "hazards_found": "Hazards found",
        "hazards_resolved": "Hazards resolved",
        "relocations": "People relocated",
        "relocated_households": "{n} households",
        "leaflets": "Leaflets handed out",
        "stickers": "Reflective stickers",
        "resolved_share": "{pct} resolved",
        "daily": "Visits per day",
        "daily_hazards": "Hazards per day",
        "by_district": "By district",
        "day": "Day",
        "district": "District",
        "visits_day": "Visits that day",
        "visits_total": "Visits so far",
        "found_day": "Found that day",
        "resolved_day": "Resolved that day",
        "found_total": "Found so far",
        "resolved_total": "Resolved so far",
        "axis_day_visits": "Visits per day",
        "axis_total_visits": "Visits so far",
        "axis_day_hazards": "Hazards per day",
        "axis_total_hazards": "Hazards so far",
        "axis_count": "Count (visits, hazards, people)",
        "s_visits": "Visits",
        "s_found": "Hazards found",
        "s_resolved": "Hazards resolved",
        "s_relocated": "People relocated",
        "s_targets": "Targets",
        "s_district": "District",
        "no_district": "outside every grid",
        "unit_visits": "",
        "unit_hazards": "",
        "coverage": "Coverage",
        "grids_visited": "Grids visited",
        "targets_visited": "Targets visited",
        "visited": "visited",
        "unvisited": "not visited yet",
        "unvisited_only": "Show only the grids not visited",
        "loading": "Loading the grids…",
        "map_failed": "The grid map did not load: ",
        "grid": "Grid",
        "grid_code": "Code",
        "last_visit": "Last visit",
        "withheld": "(fewer than {k} households: not shown)",
        "checklist": "Screening checklist",
        "item": "Item",
        "answer": "Answer",
        "required": "Required",
        "counts_as": "Counts as",
        "yes": "yes",
        "todo": "My targets still to visit",
        "todo_none": "No targets left to visit in your grids",
        "todo_more": "{n} in all, the first {shown} shown",
        "address": "Address",
        "map_link": "The campaign's reports on the theme map",
        "no_progress": "No visits yet",
    },
}
STATUS_NAMES = {
    "zh": {
        CampaignStatus.DRAFT: "筹备中",
        CampaignStatus.LAUNCHED: "进行中",
        CampaignStatus.PAUSED: "已暂停",
        CampaignStatus.CLOSED: "已结束",
    },
    "en": {
        CampaignStatus.DRAFT: "draft",
        CampaignStatus.LAUNCHED: "running",
        CampaignStatus.PAUSED: "paused",
        CampaignStatus.CLOSED: "closed",
    },
}
ANSWER_NAMES = {
    "zh": {AnswerKind.YES_NO: "是/否", AnswerKind.NUMBER: "数字", AnswerKind.TEXT: "文字"},
    "en": {AnswerKind.YES_NO: "yes/no", AnswerKind.NUMBER: "number", AnswerKind.TEXT: "text"},
}
TALLY_NAMES = {
    "zh": {Tally.RELOCATIONS: "转移人数", Tally.RELOCATED_HOUSEHOLDS: "转移户数"},
    "en": {Tally.RELOCATIONS: "people relocated", Tally.RELOCATED_HOUSEHOLDS: "households moved"},
}
REGISTER_NAMES = {
    "zh": {"households": "住户登记（{filter}）", "workshops": "小作坊", "venues": "场所"},
    "en": {
        "households": "household register ({filter})",
        "workshops": "workshops",
        "venues": "venues",
    },
}
FILTER_NAMES = {
    "zh": {
        "living_alone_over": "独居且年满 {v} 岁",
        "oldest_over": "有年满 {v} 岁的成员",
        "over_60": "有 60 岁以上成员",
        "living_alone": "独居",
        "mobility_needs": "行动不便",
        "vulnerable": "困难群体",
    },
    "en": {
        "living_alone_over": "living alone, over {v}",
        "oldest_over": "someone over {v}",
        "over_60": "someone over 60",
        "living_alone": "living alone",
        "mobility_needs": "mobility needs",
        "vulnerable": "vulnerable",
    },
}


def _theme_name(code: str, lang: str) -> str:
    t = taxonomy.THEME_BY_CODE.get(code)
    return code if t is None else (t.zh if lang == "zh" else t.en)


def _district_names(conn: Connection) -> dict[str, str]:
    return {d["code"]: d["name"] for d in queues.districts(conn, EVERYTHING)}


def _context(r: PageRequest) -> dict:
    return {
        "lang": r.lang,
        "words": WORDS[r.lang],
        "nav": navigation(r.path, r.query, r.lang, r.session),
    }


def listing(conn: Connection, r: PageRequest) -> str:
    """Return the list of every campaign, each linked to its page."""
    names = _district_names(conn)
    rows = [
        {
            **c,
            "href": lang_url(PAGE_PATH.format(code=c["code"]), "", r.lang),
            "theme_name": _theme_name(c["theme"], r.lang),
            "status_name": STATUS_NAMES[r.lang].get(c["status"], c["status"]),
            "district_names": [names.get(d, d) for d in c["districts"]],
        }
        for c in store.list_campaigns(conn)
    ]
    return render_template("campaigns.html", campaigns=rows, **_context(r))


def not_found(r: PageRequest, code: str) -> str:
    """Return the page that says there is no campaign `code` (answered with 404)."""
    w = WORDS[r.lang]
    return render_template(
        "campaign_missing.html",
        message=w["not_found"].replace("{code}", code),
        back=lang_url(LIST_PATH, "", r.lang),
        **_context(r),
    )


def _targets_name(targets: dict | None, lang: str) -> str:
    if not targets:
        return WORDS[lang]["no_targets"]
    register = targets.get("register", "")
    conditions = ", ".join(
        FILTER_NAMES[lang].get(k, k).replace("{v}", str(v))
        for k, v in (targets.get("filter") or {}).items()
        if v is not False
    )
    return REGISTER_NAMES[lang].get(register, register).replace("{filter}", conditions)


def _header(c: dict, names: dict[str, str], lang: str) -> dict:
    days = (c["ends_on"] - c["starts_on"]).days + 1
    return {
        "theme": _theme_name(c["theme"], lang),
        "period": f"{c['starts_on']} – {c['ends_on']}",
        "days": WORDS[lang]["days"].replace("{n}", str(days)),
        "status": str(c["status"]),
        "status_name": STATUS_NAMES[lang].get(c["status"], str(c["status"])),
        "districts": [names.get(d, d) for d in c["districts"]],
        "partners": list(c["departments"]),
        "targets": _targets_name(c["targets"], lang),
    }


def _totals(totals: dict, lang: str) -> list[dict]:
    w = WORDS[lang]
    found, resolved = totals["hazards_found"], totals["hazards_resolved"]
    notes = {
        "hazards_resolved": w["resolved_share"].replace("{pct}", f"{resolved / found:.1%}")
        if found
        else "",
        "relocations": w["relocated_households"].replace(
            "{n}", f"{totals['relocated_households']:,}"
        ),
    }
    return [{"key": k, "label": w[k], "value": totals[k], "note": notes.get(k, "")} for k in TOTALS]


def _per_day(days: list[dict]) -> tuple[list[str], dict[str, list[int]]]:
    """Return the days and, per figure, the sum over the districts of each day."""
    summed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in days:
        for figure in progress.FIGURES:
            summed[row["day"]][figure] += row[figure]
    order = sorted(summed)
    return order, {f: [summed[d][f] for d in order] for f in progress.FIGURES}


def _daily_charts(days: list[dict], lang: str) -> dict[str, dict]:
    w = WORDS[lang]
    order, per = _per_day(days)
    x = {"name": w["day"], "type": "day", "data": order}

    def cumulative(figure: str) -> list[int]:
        return list(accumulate(per[figure]))

    visits = {
        "x": x,
        "y": [
            {"name": w["axis_day_visits"], "unit": w["unit_visits"]},
            {"name": w["axis_total_visits"], "unit": w["unit_visits"]},
        ],
        "series": [
            {"name": w["visits_day"], "type": "bar", "y": 0, "data": per["visits"]},
            {"name": w["visits_total"], "type": "line", "y": 1, "data": cumulative("visits")},
        ],
    }
    hazards = {
        "x": x,
        "y": [
            {"name": w["axis_day_hazards"], "unit": w["unit_hazards"]},
            {"name": w["axis_total_hazards"], "unit": w["unit_hazards"]},
        ],
        "series": [
            {"name": w["found_day"], "type": "bar", "y": 0, "data": per["hazards_found"]},
            {"name": w["resolved_day"], "type": "bar", "y": 0, "data": per["hazards_resolved"]},
            {"name": w["found_total"], "type": "line", "y": 1, "data": cumulative("hazards_found")},
            {
                "name": w["resolved_total"],
                "type": "line",
                "y": 1,
                "data": cumulative("hazards_resolved"),
            },
        ],
    }
    return {"visits": visits, "hazards": hazards}


def _district_chart(days: list[dict], names: dict[str, str], lang: str) -> dict:
    w = WORDS[lang]
    summed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in days:
        for figure in ("visits", "hazards_found", "hazards_resolved", "relocations"):
            summed[row["district"] or ""][figure] += row[figure]
    # Visits and reports outside every grid have no district: shown last, as such.
    order = sorted(summed, key=lambda d: (d == "", d))
    names = {**names, "": w["no_district"]}
    shown = (("visits", "s_visits"), ("hazards_found", "s_found"))
    shown += (("hazards_resolved", "s_resolved"), ("relocations", "s_relocated"))
    return {
        "x": {"name": w["district"], "type": "category", "data": [names.get(d, d) for d in order]},
        "y": [{"name": w["axis_count"]}],
        "series": [
            {"name": w[label], "type": "bar", "data": [summed[d][f] for d in order]}
            for f, label in shown
        ],
    }


def _checklist(items: list[dict], lang: str) -> list[dict]:
    return [
        {
            "code": i["code"],
            "label": i["label"],
            "answer": ANSWER_NAMES[lang].get(i["answer"], i["answer"]),
            "required": bool(i.get("required")),
            "tally": TALLY_NAMES[lang].get(i["tally"], i["tally"]) if i.get("tally") else "",
        }
        for i in items
    ]


def _script_data(c: dict, r: PageRequest, k: int, zone: str, names: dict[str, str]) -> dict:
    w = WORDS[r.lang]
    worker = r.session is not None and r.session.role == Role.WORKER
    api = API.format(code=c["code"])
    words = {key: w[key] for key in MAP_WORDS}
    words["withheld"] = w["withheld"].replace("{k}", str(k))
    return {
        "code": c["code"],
        "coverage": f"{api}/coverage",
        "todo": f"{api}/targets?todo=mine&limit={TODO_LIMIT}" if worker and c["targets"] else None,
        "zone": zone,
        "districts": {d: names.get(d, d) for d in c["districts"]},
        "words": words,
    }


def page(conn: Connection, r: PageRequest, code: str, zone: str, k: int) -> str:
    """Return the page of campaign `code` (NotFound if there is none): figures and charts of
    its progress up to today in `zone`; `k` is the smallest household count shown."""
    row = store.get_row(conn, code)
    c = store.answer(row)
    names = _district_names(conn)
    today = datetime.now(ZoneInfo(zone)).date()
    found = progress.progress(conn, row, None, zone, today)
    days = found["days"]
    return render_template(
        "campaign.html",
        campaign=c,
        header=_header(c, names, r.lang),
        totals=_totals(found["totals"], r.lang),
        charts={**_daily_charts(days, r.lang), "districts": _district_chart(days, names, r.lang)},
        has_progress=any(d["visits"] or d["hazards_found"] for d in days),
        checklist=_checklist(c["checklist"], r.lang),
        data=_script_data(c, r, k, zone, names),
        list_href=lang_url(LIST_PATH, "", r.lang),
        map_href=lang_url(f"/maps/{c['theme']}", f"campaign={c['code']}", r.lang),
        **_context(r),
    )
