"""A risk letter (风险提示函) as a document: HTML for the browser and the same HTML set as a PDF
by WeasyPrint (web/templates/letter.html, letter_map.html; web/static/css/letter.css).

The PDF is laid out from local files only (the stylesheet and the system's Noto Sans CJK):
WeasyPrint's fetcher refuses every address, so a letter renders on an intranet with no
network. Its text is real text, searchable and copyable, the map's labels included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from geo.letters.recommend import UNIT_ZH
from geo.letters.status import LetterStatus
from geo.reports import taxonomy
from web.assets import STATIC
from web.console import STATUS_NAMES
from web.maps import CLASS_COLOURS
from web.maps import LABELS as MAP_LABELS
from web.templating import render_template

CSS = STATIC / "css" / "letter.css"
STATUS_ZH = {
    LetterStatus.DRAFT: "草稿",
    LetterStatus.ISSUED: "已印发",
    LetterStatus.ACKNOWLEDGED: "已签收",
    LetterStatus.REPLIED: "已回复",
    LetterStatus.CLOSED: "已办结",
}
PATTERN_ZH = {
    "new": "新增",
    "consecutive": "连续",
    "intensifying": "加强",
    "persistent": "持续",
    "diminishing": "减弱",
    "sporadic": "零星",
    "oscillating": "振荡",
    "historical": "历史",
}
STEP_ZH = {"day": "日", "week": "周", "month": "月"}
FIGURES = (
    ("received", "上报事件"),
    ("accepted", "立案"),
    ("resolved", "处置完成"),
    ("closed", "结案"),
    ("closure_rate", "结案率"),
    ("open", "期内事件未办结"),
    ("overdue", "期内事件超期"),
    ("returned", "回退"),
    ("reworked", "返工"),
)
DOT_COLOURS = {"open": "#1f4e99", "overdue": "#d62728"}
SERIES_W, SERIES_H = 640, 120
LEGEND_PER_ROW = 7


def pattern_zh(code: str) -> str:
    """Return an emerging hot spot pattern's Chinese name (new_hot → 新增热点)."""
    if code == "no_pattern":
        return "无明显模式"
    kind, _, side = code.rpartition("_")
    return PATTERN_ZH.get(kind, kind) + ("热点" if side == "hot" else "冷点")


def _day(value: Any, zone: ZoneInfo, clock: bool = False) -> str:
    if value is None:
        return ""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    t = t.astimezone(zone)
    text = f"{t.year}年{t.month}月{t.day}日"
    return text + f" {t:%H:%M}" if clock else text


def _figure(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_rate"):
        return f"{value * 100:.1f}%"
    return f"{value:,}"


def _series(trend: dict) -> dict | None:
    points = trend.get("series") or []
    if not points:
        return None
    top = max(p["count"] for p in points) or 1
    gap = SERIES_W / len(points)
    bars = [
        {
            "x": round(i * gap + gap * 0.1, 1),
            "w": round(gap * 0.8, 1),
            "h": round(p["count"] / top * (SERIES_H - 30), 1),
            "count": p["count"],
        }
        for i, p in enumerate(points)
    ]
    return {"bars": bars, "top": top, "w": SERIES_W, "h": SERIES_H, "base": SERIES_H - 18}


def _legend(m: dict) -> list[dict]:
    present = {g["class"] for g in m["grids"] if g["class"]}
    items = [
        {"kind": "area", "colour": CLASS_COLOURS[c], "label": MAP_LABELS["zh"][c]}
        for c in CLASS_COLOURS
        if c in present
    ]
    items.append({"kind": "dot", "colour": DOT_COLOURS["open"], "label": "未办结事件"})
    items.append({"kind": "dot", "colour": DOT_COLOURS["overdue"], "label": "超期事件"})
    if m["districts"]:
        items.append({"kind": "line", "colour": "#444", "label": "区县界"})
    for i, item in enumerate(items):
        item["x"], item["y"] = (i % LEGEND_PER_ROW) * 96, (i // LEGEND_PER_ROW) * 16
    return items


def _map(m: dict | None) -> dict | None:
    if not m:
        return None
    metres = m["scale"]["metres"]
    legend = _legend(m)
    return {
        **m,
        "colours": CLASS_COLOURS,
        "dot_colours": DOT_COLOURS,
        "legend": legend,
        "legend_h": 12 + 16 * ((len(legend) - 1) // LEGEND_PER_ROW + 1),
        "scale_label": f"{metres // 1000:,} km ({metres:,} m)" if metres >= 1000 else f"{metres} m",
    }


def _open_rows(items: list[dict], zone: ZoneInfo) -> list[dict]:
    rows = []
    for r in items:
        by = r["overdue_by"]
        rows.append(
            {
                **r,
                "status_zh": STATUS_NAMES["zh"].get(r["status"], r["status"]),
                "reported": _day(r["reported_at"], zone),
                "due": _day(r["due_at"], zone, clock=True),
                "over": f"{by['amount']:g} {UNIT_ZH[by['unit']]}" if by else "",
                "place": " ".join(x for x in (r["district_name"], r["grid_name"]) if x),
            }
        )
    return rows


def context(letter: dict, timezone: str) -> dict:
    """Return what the letter's template shows, formatted for reading."""
    zone = ZoneInfo(timezone)
    figures = letter["figures"] or {}
    trend = letter["trend"] or {}
    hotspots = letter["hotspots"] or {}
    theme = taxonomy.THEME_BY_CODE.get((letter["scope"] or {}).get("theme") or "")
    return {
        "letter": letter,
        "status_zh": STATUS_ZH.get(letter["status"], letter["status"]),
        "theme_zh": theme.zh if theme else "",
        "number": letter["number"] or "（草稿，印发时编号）",
        "period": {k: _day(v, zone) for k, v in (letter["period"] or {}).items()},
        "figures": [(label, _figure(k, figures.get(k))) for k, label in FIGURES],
        "figures_raw": figures,
        "hot_rows": [
            {**g, "class_zh": MAP_LABELS["zh"][g["class"]]} for g in hotspots.get("grids", [])
        ],
        "trend_patterns": [
            (pattern_zh(k), n)
            for k, n in (trend.get("patterns") or {}).items()
            if k != "no_pattern"
        ],
        "trend_rows": [
            {**g, "pattern_zh": pattern_zh(g["pattern"])} for g in trend.get("grids", [])
        ],
        "step_zh": STEP_ZH.get(trend.get("step") or "", ""),
        "series": _series(trend),
        "open_rows": _open_rows((letter["open_reports"] or {}).get("items", []), zone),
        "recommendations": [x for x in letter["recommendations"].splitlines() if x.strip()],
        "map": _map(letter.get("map")),
        "signed_on": _day(letter["issued_at"] or letter["created_at"], zone),
        "reply_due": _day(letter["reply_due"], zone, clock=True),
        "replied_at": _day(letter["replied_at"], zone, clock=True),
    }


def letter_html(letter: dict, timezone: str, for_pdf: bool = False) -> str:
    """Return the letter as an HTML document (for the PDF: without links to the site)."""
    return render_template("letter.html", for_pdf=for_pdf, **context(letter, timezone))


def _no_fetching(url: str, *args: object, **kwargs: object) -> dict:
    raise ValueError(f"a letter is laid out from local files only, not {url}")


def _weasyprint():
    import weasyprint  # ~0.9 s to import: only when a PDF is asked for
    from PIL import ImageFile

    # Importing it tells Pillow to accept truncated images, process-wide: a photo upload cut
    # short would then be stored as if whole. A letter embeds no raster image.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


def letter_pdf(letter: dict, timezone: str) -> bytes:
    """Return the letter as a PDF (A4, Noto Sans CJK, searchable text)."""
    weasyprint = _weasyprint()
    document = weasyprint.HTML(
        string=letter_html(letter, timezone, for_pdf=True), url_fetcher=_no_fetching
    )
    style = weasyprint.CSS(filename=str(CSS), url_fetcher=_no_fetching)
    return document.write_pdf(stylesheets=[style])
