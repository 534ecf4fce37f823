"""The server-rendered pages: the start page, the campaign dashboard, the grid worker's phone
page (templates under `web/templates/`, rendered by `web.templating`)."""

from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
from sqlalchemy import Connection

from geo.cache import Versions
from geo.errors import InvalidInput
from geo.grids.layer import GridLayer, grid_layer
from geo.reports import queries, taxonomy
from geo.reports.campaigns import list_campaigns
from geo.reports.queries import ReportFilter
from web.templating import lang_url, navigation, render_template

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


def _context(path: str, query: str, lang: str) -> dict:
    return {"lang": lang, "lab": LABELS[lang], "nav": navigation(path, query, lang)}


def index(conn: Connection, lang: str = "zh", path: str = "/", query: str = "") -> str:
    """Return the start page: themes and campaigns with counts and links."""
    by_theme = queries.stats(conn, ReportFilter())["by_theme"]
    themes = [
        {
            "href": lang_url(f"/maps/{t.code}", "", lang),
            "name": t.zh if lang == "zh" else t.en,
            "other": t.en if lang == "zh" else t.zh,
            "reports": by_theme.get(t.code, 0),
        }
        for t in taxonomy.THEMES
    ]
    campaigns = []
    for c in list_campaigns(conn):
        s = queries.stats(conn, ReportFilter(campaign=c["code"]))
        href = lang_url(f"/maps/{c['theme']}", urlencode({"campaign": c["code"]}), lang)
        campaigns.append({**c, "href": href, "stats": s})
    return render_template(
        "index.html", themes=themes, campaigns=campaigns, **_context(path, query, lang)
    )


def _trend_bars(weeks: list, width: int, height: int) -> list[dict]:
    """Return the weekly reported (and resolved) bars of the trend chart, in SVG units."""
    top = max(n for _, n, _ in weeks) or 1
    step = width / len(weeks)
    return [
        {
            "x": f"{i * step:.1f}",
            "width": f"{max(step - 1, 1):.1f}",
            "y": f"{height - n / top * height:.1f}",
            "height": f"{n / top * height:.1f}",
            "resolved_y": f"{height - r / top * height:.1f}",
            "resolved_height": f"{r / top * height:.1f}",
            "title": f"{w:%Y-%m-%d}: {n}",
        }
        for i, (w, n, r) in enumerate(weeks)
    ]


def dashboard(conn: Connection, lang: str = "zh", path: str = "/dashboard", query: str = "") -> str:
    """Return the campaign dashboard: totals, resolution, level, weekly trend per campaign."""
    width, height = 640, 120
    campaigns = []
    for c in list_campaigns(conn):
        f = ReportFilter(campaign=c["code"])
        weeks = queries.weekly_counts(conn, f)
        bars = _trend_bars(weeks, width, height) if weeks else []
        campaigns.append({**c, "stats": queries.stats(conn, f), "bars": bars})
    return render_template(
        "dashboard.html",
        campaigns=campaigns,
        trend={"width": width, "height": height},
        **_context(path, query, lang),
    )


def town_centre(layer: GridLayer) -> tuple[float, float]:
    """Return (lat, lon) where the grids are smallest: the median point of the smallest tenth.

    Grids are drawn to what one worker can walk, so the small ones lie where the town is
    densest: a good first view for a phone.
    """
    small = np.argsort(layer.area_km2)[: max(1, len(layer.codes) // 10)]
    points = layer.frame.geometry.iloc[small].representative_point()
    return round(float(np.median(points.y)), 5), round(float(np.median(points.x)), 5)


def report(
    conn: Connection, v: Versions, lang: str = "zh", path: str = "/report", query: str = ""
) -> str:
    """Return the grid worker's phone page: position, theme and category, offline outbox."""
    try:
        centre: tuple[float, float] | None = town_centre(grid_layer(conn, v))
    except InvalidInput:  # no grids loaded yet: the pick map starts on the whole world
        centre = None
    return render_template(
        "report.html",
        words=REPORT_WORDS[lang],
        centre=centre,
        **_context(path, query, lang),
    )
