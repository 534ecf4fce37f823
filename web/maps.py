"""Theme maps built with Folium from server-side aggregates, served with local assets only.

The page's size does not grow with the number of reports: the heat layer is drawn from hexagon
bins, the choropleth holds only grids with a significant Gi* class, and at most
`MAX_MARKERS` open reports are shown as markers.
"""

from __future__ import annotations

from datetime import timedelta

import folium
import orjson
import shapely
import shapely.geometry
from folium import plugins
from sqlalchemy import Connection

from geo.analytics import patterns, stats_process
from geo.analytics.gistar import GiResult, GiSpec, gistar_start
from geo.analytics.quiet import QuietResult, QuietSpec, quiet_result
from geo.analytics.weights import weights
from geo.cache import Versions, cached, versions
from geo.grids.layer import coverage, grid_layer
from geo.reports import queries as report_queries
from geo.reports import taxonomy
from geo.reports.queries import ReportFilter
from geo.settings import AuthSettings, MapSettings
from geo.vocabulary import ACTIVE_STATUSES
from web.folium_page import render
from web.map_base import (
    TextTooltip,
    add_district_borders,
    add_grid_outlines,
    add_html,
    base_map,
    geojson_to_gcj02,
    points_to_gcj02,
    round5,
)
from web.templating import NAV_SLOT, render_template

# Caps that keep a page's size independent of the number of reports.
MAX_MARKERS = 300
MAX_HEAT_CELLS = 2500
MAX_FRAME_CELLS = 300
MAX_CLUSTERS = 60
MAX_QUIET = 300  # quiet grids drawn, the surest first; the API lists them all
DBSCAN_SAMPLE = 40_000  # more reports are clustered as a sample: the time stays bounded
WEEK_S = 7 * 86_400
SIMPLIFY_DEG = 0.0002
HEX_M = 1500.0
CLASS_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
LABELS = {
    "zh": {
        "heat": "热力图",
        "gistar": "热点/冷点 (Gi*)",
        "clusters": "聚集区 (DBSCAN)",
        "reports": "未办结事件",
        "weekly": "逐周热力",
        "legend": "Gi* 热点分级",
        "hot_99": "热点 99%",
        "hot_95": "热点 95%",
        "hot_90": "热点 90%",
        "cold_90": "冷点 90%",
        "cold_95": "冷点 95%",
        "cold_99": "冷点 99%",
        "all": "全部",
        "theme": "专题",
        "grid": "网格",
        "status": "状态",
        "reported": "上报时间",
        "department": "责任部门",
        "category": "类别",
        "latest": "未办结事件：显示最新 {n} 条",
        "districts": "区县界",
        "grids": "网格边界（放大后显示）",
    },
    "en": {
        "heat": "Heat",
        "gistar": "Hot and cold spots (Gi*)",
        "clusters": "Clusters (DBSCAN)",
        "reports": "Open reports",
        "weekly": "Weekly heat",
        "legend": "Gi* hot spot class",
        "hot_99": "Hot 99%",
        "hot_95": "Hot 95%",
        "hot_90": "Hot 90%",
        "cold_90": "Cold 90%",
        "cold_95": "Cold 95%",
        "cold_99": "Cold 99%",
        "all": "All",
        "theme": "Theme",
        "grid": "Grid",
        "status": "Status",
        "reported": "Reported",
        "department": "Department",
        "category": "Category",
        "latest": "Open reports: the latest {n} shown",
        "districts": "District borders",
        "grids": "Grid outlines (zoom in)",
    },
}
# The "quiet: check" layer (核查漏报): the words of its name and tooltip.
QUIET_LABELS = {
    "zh": {
        "layer": "核查漏报（上报少于预期）",
        "grid": "网格",
        "observed": "实际上报",
        "expected": "预期上报",
    },
    "en": {
        "layer": "Quiet: check (fewer reports than expected)",
        "grid": "Grid",
        "observed": "Reported",
        "expected": "Expected",
    },
}
K_ANONYMITY = AuthSettings.model_fields["k_anonymity"].default
THEMES = ("all", *taxonomy.THEME_BY_CODE)
MARKER_CALLBACK = "riskgridReportMarker"  # js/report-markers.js: one marker per data row


def _theme_label(code: str, lang: str) -> str:
    if code == "all":
        return LABELS[lang]["all"]
    t = taxonomy.THEME_BY_CODE[code]
    return t.zh if lang == "zh" else t.en


def open_report_markers(conn: Connection, f: ReportFilter, lang: str) -> list[list]:
    """Return [lat, lon, popup HTML] of the latest open reports, at most MAX_MARKERS."""
    lab = LABELS[lang]
    open_f = ReportFilter(**{**f.__dict__, "status": tuple(ACTIVE_STATUSES)})
    page = orjson.loads(report_queries.page(conn, open_f, MAX_MARKERS, None))
    rows = []
    for ft in page["features"]:
        p = ft["properties"]
        lon, lat = ft["geometry"]["coordinates"]
        cat = taxonomy.category(p["theme"], p["category"])
        popup = render_template(
            "maps/report_popup.html",
            lab=lab,
            category=(cat.zh if lang == "zh" else cat.en) if cat else p["category"],
            status=p["status"],
            grid=str(p["grid_name"] or p["grid"] or "-"),
            reported=str(p["reported_at"])[:16],
            department=str(p["department"]),
        )
        rows.append([round(lat, 6), round(lon, 6), popup])
    return rows


def _weekly(conn: Connection, f: ReportFilter, v: Versions) -> tuple[list, list[str]]:
    first, last = report_queries.time_range(conn, f)
    if first is None or last is None:
        return [], []
    # The filter's window, else the data's (a campaign's weeks), at most the last 26 weeks.
    until = f.until or last + timedelta(seconds=1)
    since = f.since or max(first, until - timedelta(weeks=26))
    periods = min(26, max(1, int(-(-(until - since).total_seconds() // WEEK_S))))
    weeks = patterns.hexbins_by_period(conn, f, v, HEX_M, since, WEEK_S, periods, MAX_FRAME_CELLS)
    frames = []
    for cells in weeks:
        top = max((n for _, _, n in cells), default=1)
        frames.append([[lat, lon, n / top] for lat, lon, n in cells])
    index = [(since + timedelta(weeks=k)).date().isoformat() for k in range(periods)]
    return frames, index


def _significant(r: GiResult, lang: str) -> dict:
    """Return the significant Gi* grids dissolved into one (multi)polygon per class.

    The grids are an exact coverage, so the dissolve drops every inner edge: the layer stays
    small however many grids light up.
    """
    cov = coverage(r.layer, SIMPLIFY_DEG)
    by_class: dict[str, list[int]] = {}
    for i, cls in enumerate(r.classes()):
        if cls in CLASS_COLOURS:
            by_class.setdefault(cls, []).append(i)
    feats = []
    for cls, idx in by_class.items():
        # Rounded to ~1 m for the page: a display, not a geometry to compute with.
        region = shapely.transform(shapely.coverage_union_all(cov[idx]), round5)
        feats.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(region),
                "properties": {
                    "class": cls,
                    "label": LABELS[lang][cls],
                    "grids": len(idx),
                    "reports": int(r.counts[idx].sum()),
                },
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def warm_up(conn: Connection) -> None:
    """Prepare what the first theme map needs: the statistics process, weights, coverage."""
    stats_process.warm_up()
    layer = grid_layer(conn, versions(conn))
    weights(layer)
    coverage(layer, SIMPLIFY_DEG)


def _add_legend(m: folium.Map, lang: str) -> None:
    """Add a categorical legend of the Gi* classes and the other layers."""
    lab = LABELS[lang]
    add_html(
        m,
        "maps/legend.html",
        title=lab["legend"],
        classes=[(lab[cls], colour) for cls, colour in CLASS_COLOURS.items()],
        clusters=lab["clusters"],
        quiet=QUIET_LABELS[lang]["layer"],
        latest=lab["latest"].replace("{n}", str(MAX_MARKERS)),
    )


def _add_switcher(m: folium.Map, theme: str, lang: str, query: str) -> None:
    """Add the theme switcher (the query kept), with the slot of the navigation between the
    pages (each request's own: web.templating.with_session)."""
    themes = [
        {"name": _theme_label(t, lang), "href": f"/maps/{t}{query}", "current": t == theme}
        for t in THEMES
    ]
    add_html(
        m,
        "maps/theme_switcher.html",
        label=LABELS[lang]["theme"],
        themes=themes,
        slot=NAV_SLOT,
    )


def theme_map(
    conn: Connection,
    v: Versions,
    theme: str,
    f: ReportFilter,
    lang: str = "zh",
    query: str = "",
    basemap: MapSettings | None = None,
    k: int = K_ANONYMITY,
) -> tuple[str, bool]:
    """Return (HTML page of one theme's map, was cached); cached per data version and filter,
    the principal's scope included, with a navigation slot (web.templating.with_session).
    `k` is auth.k_anonymity (the quiet layer's residents counted from few households)."""
    base = basemap or MapSettings()
    key = ("map", theme, f, lang, query, base.model_dump_json(), k, v)
    return cached(key, lambda: _build(conn, v, theme, f, lang, query, base, k))


def _build(
    conn: Connection,
    v: Versions,
    theme: str,
    f: ReportFilter,
    lang: str,
    query: str,
    base: MapSettings,
    k: int,
) -> str:
    """Return the HTML page of one theme's map (all assets local)."""
    lab = LABELS[lang]
    gcj = base.basemap == "gaode"
    # esda computes Gi* in another process while this one runs the other layers' queries.
    gi = gistar_start(conn, f, GiSpec(), v, stats_process.submit)
    m = base_map(base, grid_layer(conn, v), zoom_start=9, prefer_canvas=True)
    # Orientation first, so that it lies under the data layers.
    add_district_borders(m, conn, lab["districts"], gcj)
    add_grid_outlines(m, lab["grids"], gcj)
    heat = points_to_gcj02(
        [list(c) for c in patterns.hex_centres(conn, f, v, HEX_M, MAX_HEAT_CELLS)], gcj
    )
    # Density-aware: ten times the reports need ten times the points to make a cluster,
    # so the number of outlines (and the page) does not grow with the volume.
    min_points = max(15, round(sum(p[2] for p in heat) / 1500))
    found = patterns.dbscan(conn, f, v, 400.0, min_points, sample_to=DBSCAN_SAMPLE)
    markers = open_report_markers(conn, f, lang)
    frames, index = _weekly(conn, f, v)
    gi_result = gi()
    sig = geojson_to_gcj02(_significant(gi_result, lang), gcj)
    # Beside the cold spots: a grid nobody reports from is not a grid without risk.
    quiet = quiet_result(conn, f, QuietSpec.of(base), v, k, counts=gi_result.counts)

    _add_heat(m, heat, lab["heat"])
    _add_gistar(m, sig, lab["gistar"])
    _add_clusters(m, found, lab["clusters"], gcj)
    add_quiet(m, quiet, lang, gcj)  # over the clusters' outlines: its tooltip stays reachable
    # One data array and one callback instead of a script per marker: a fifth of the bytes.
    plugins.FastMarkerCluster(
        points_to_gcj02(markers, gcj), name=lab["reports"], callback=MARKER_CALLBACK
    ).add_to(m)
    _add_weekly_heat(m, frames, index, lab["weekly"], gcj)
    _add_legend(m, lang)
    folium.LayerControl(collapsed=False).add_to(m)
    if heat:
        lats = [p[0] for p in heat]
        lons = [p[1] for p in heat]
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    _add_switcher(m, theme, lang, query)
    return render(m)


def _add_heat(m: folium.Map, heat: list[list], name: str) -> None:
    """Add the heat layer of the hexagon bins' centres, weighted by their share of the top."""
    top = max((p[2] for p in heat), default=1)
    plugins.HeatMap(
        [[p[0], p[1], p[2] / top] for p in heat], name=name, radius=18, min_opacity=0.3
    ).add_to(m)


def _add_gistar(m: folium.Map, sig: dict, name: str) -> None:
    """Add the significant Gi* classes, one region per class, when any grid is significant."""
    if not sig["features"]:
        return
    folium.GeoJson(
        sig,
        name=name,
        style_function=lambda ft: {
            "fillColor": CLASS_COLOURS[ft["properties"]["class"]],
            "color": "#555",
            "weight": 0.4,
            "fillOpacity": 0.6,
        },
        tooltip=TextTooltip(["label", "grids", "reports"]),
    ).add_to(m)


def quiet_features(r: QuietResult, lang: str) -> dict:
    """Return the grids flagged "quiet: check", the surest (lowest q) MAX_QUIET, with their
    reports observed and expected (– where the residents are withheld)."""
    lab = QUIET_LABELS[lang]
    cov = coverage(r.layer, SIMPLIFY_DEG)
    at = {int(i): j for j, i in enumerate(r.grids)}
    shown = sorted(r.flagged, key=lambda i: (r.test.q[at[i]], r.layer.codes[i]))[:MAX_QUIET]
    feats = []
    for i in shown:
        j = at[i]
        expected = None if r.residents.withheld[j] else round(float(r.test.expected[j]), 1)
        feats.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shapely.transform(cov[i], round5)),
                "properties": {
                    "code": r.layer.codes[i],
                    lab["grid"]: r.layer.names[i],
                    lab["observed"]: int(r.observed[j]),
                    lab["expected"]: "–" if expected is None else expected,
                },
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def add_quiet(m: folium.Map, r: QuietResult, lang: str, gcj: bool) -> None:
    """Add the "quiet: check" (核查漏报) grids as dashed outlines over the Gi* fill and the
    clusters, when any grid is flagged."""
    fc = quiet_features(r, lang)
    if not fc["features"]:
        return
    lab = QUIET_LABELS[lang]
    folium.GeoJson(
        geojson_to_gcj02(fc, gcj),
        name=lab["layer"],
        style_function=lambda _: {
            "color": "#111",
            "weight": 2,
            "dashArray": "6 4",
            "fillColor": "#111",
            "fillOpacity": 0.08,
        },
        tooltip=TextTooltip([lab["grid"], lab["observed"], lab["expected"]]),
    ).add_to(m)


def _add_clusters(m: folium.Map, found: dict, name: str, gcj: bool) -> None:
    """Add the outlines of the DBSCAN clusters, at most MAX_CLUSTERS."""
    if not found["features"]:
        return
    folium.GeoJson(
        geojson_to_gcj02(
            {"type": "FeatureCollection", "features": found["features"][:MAX_CLUSTERS]}, gcj
        ),
        name=name,
        style_function=lambda _: {"color": "#6a3d9a", "weight": 2, "fillOpacity": 0.05},
        tooltip=TextTooltip(["count", "dominant_category"]),
    ).add_to(m)


def _add_weekly_heat(m: folium.Map, frames: list, index: list[str], name: str, gcj: bool) -> None:
    """Add the weekly heat slider, when there are weeks to show."""
    if not frames:
        return
    plugins.HeatMapWithTime(
        [points_to_gcj02(fr, gcj) for fr in frames],
        index=index,
        name=name,
        radius=18,
        auto_play=False,
        min_opacity=0.3,
    ).add_to(m)
