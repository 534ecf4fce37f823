"""The index and dashboard pages: small server-rendered HTML, no script from outside."""

from __future__ import annotations

import html

from sqlalchemy import Connection

from geo.reports import queries, taxonomy
from geo.reports.campaigns import list_campaigns
from geo.reports.queries import ReportFilter

STYLE = """<style>
body{font:15px/1.5 sans-serif;margin:24px;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;width:100%;margin:12px 0 24px}
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left}
th{background:#f6f8fa} td.n{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0969da} .muted{color:#57606a} svg{background:#f6f8fa}
</style>"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · riskgrid</title>{STYLE}</head><body>{body}</body></html>"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def index(conn: Connection) -> str:
    """Return the start page: themes and campaigns with counts and links."""
    by_theme = queries.stats(conn, ReportFilter())["by_theme"]
    rows = "".join(
        f'<tr><td><a href="/maps/{t.code}">{html.escape(t.zh)}</a> '
        f'<span class="muted">{html.escape(t.en)}</span></td>'
        f'<td class="n">{by_theme.get(t.code, 0):,}</td></tr>'
        for t in taxonomy.THEMES
    )
    camp_rows = []
    for c in list_campaigns(conn):
        s = queries.stats(conn, ReportFilter(campaign=c["code"]))
        camp_rows.append(
            f'<tr><td><a href="/maps/{c["theme"]}?campaign={c["code"]}">{html.escape(c["name"])}'
            f"</a></td><td>{html.escape(c['theme'])}</td><td>{c['starts_on']} – {c['ends_on']}"
            f'</td><td class="n">{s["total"]:,}</td><td class="n">{_pct(s["resolution_rate"])}</td></tr>'
        )
    body = (
        "<h1>riskgrid 网格化风险地图</h1>"
        '<p><a href="/maps/all">全部专题地图</a> · <a href="/dashboard">创安行动看板</a> · '
        '<a href="/report">网格员上报</a> · <a href="/docs">API</a></p>'
        f"<h2>专题</h2><table><tr><th>专题</th><th>事件数</th></tr>{rows}</table>"
        "<h2>创安行动</h2><table><tr><th>行动</th><th>专题</th><th>时间</th><th>事件数</th>"
        f"<th>办结率</th></tr>{''.join(camp_rows)}</table>"
    )
    return _page("riskgrid", body)


def _trend_svg(weeks: list, width: int = 640, height: int = 120) -> str:
    if not weeks:
        return '<p class="muted">无数据</p>'
    top = max(n for _, n, _ in weeks) or 1
    bar = width / len(weeks)
    bars = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - n / top * height:.1f}" width="{max(bar - 1, 1):.1f}" '
        f'height="{n / top * height:.1f}" fill="#54aeff"><title>{w:%Y-%m-%d}: {n}</title></rect>'
        f'<rect x="{i * bar:.1f}" y="{height - r / top * height:.1f}" width="{max(bar - 1, 1):.1f}" '
        f'height="{r / top * height:.1f}" fill="#2da44e" opacity="0.7"/>'
        for i, (w, n, r) in enumerate(weeks)
    )
    return (
        f'<svg class="trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="weekly reports">{bars}</svg>'
    )


def dashboard(conn: Connection) -> str:
    """Return the campaign dashboard: totals, resolution, level, weekly trend per campaign."""
    parts = ['<h1>创安行动看板</h1><p><a href="/">首页</a></p>']
    for c in list_campaigns(conn):
        f = ReportFilter(campaign=c["code"])
        s = queries.stats(conn, f)
        parts.append(
            f'<section class="campaign" id="{c["code"]}"><h2>{html.escape(c["name"])} '
            f'<span class="muted">{html.escape(c["theme"])} · {c["starts_on"]} – {c["ends_on"]}'
            f"</span></h2><table><tr><th>事件</th><th>已办结</th><th>办结率</th>"
            f"<th>街道/乡镇及以下办结占比</th><th>逾期</th></tr><tr>"
            f'<td class="n">{s["total"]:,}</td><td class="n">{s["resolved"]:,}</td>'
            f'<td class="n">{_pct(s["resolution_rate"])}</td>'
            f'<td class="n">{_pct(s["share_resolved_at_street_or_below"])}</td>'
            f'<td class="n">{s["overdue"]:,}</td></tr></table>'
            f"{_trend_svg(queries.weekly_counts(conn, f))}</section>"
        )
    return _page("创安行动看板", "".join(parts))
