"""The flood coordinator's map: flood layers, ranked grids, open hazards, household counts, and
a draw tool whose polygon runs the area query (`POST /api/v1/risk/query`) in the page.

Personal data never goes into the page: the relocation list comes from the API, with the
page's session, and only to a role with the right to it. The page shows what the principal's
scope holds: the hazards of their reports, the grids of their districts, and household counts
only to roles that may see households.
"""

from __future__ import annotations

import html

import branca
import folium
import numpy as np
import orjson
import pandas as pd
from folium import plugins
from sqlalchemy import Connection

from geo.analytics.quiet import HouseholdRight, QuietSpec, quiet_result
from geo.cache import Versions, cached
from geo.errors import NotFound
from geo.grids.layer import GridLayer, grid_layer
from geo.reports.queries import ReportFilter
from geo.risk import layers as risk_layers
from geo.risk.ranking import RankSpec, ranking, risk_versions, withhold_households
from geo.settings import MapSettings, RiskSettings
from web.folium_page import render
from web.map_base import (
    MAP_SCRIPTS,
    TextTooltip,
    add_call,
    add_district_borders,
    add_grid_outlines,
    add_html,
    base_map,
    geojson_to_gcj02,
    grid_extent,
    points_to_gcj02,
)
from web.maps import MARKER_CALLBACK, add_quiet, open_report_markers
from web.templating import NAV_SLOT

TOP_GRIDS = 300  # ranked grids drawn; the full ranking is one click away (CSV/XLSX)
SIMPLIFY_DEG = 0.0003  # about 25 m: outlines for display, not measurement
ZONE_COLOURS = {1: "#9ecae1", 2: "#4292c6", 3: "#08306b"}
SCRIPTS = (*MAP_SCRIPTS, "js/coordinator.js")
RANKED_FIELDS = [
    "rank",
    "name",
    "score",
    "households",
    "vulnerable_residents",
    "open_flood_hazards",
]
HOUSEHOLD_FIELDS = ("households", "vulnerable_residents")  # shown to roles that see households
LABELS = {
    "zh": {
        "title": "汛期协调：洪水风险",
        "districts": "区县界",
        "grids": "网格边界（放大后显示）",
        "zones": "洪水风险区",
        "low": "低洼易涝区",
        "water": "河流与水库",
        "ranked": f"风险最高的 {TOP_GRIDS} 个网格",
        "hazards": "未处置的汛情隐患",
        "homes": "重点住户（按网格计数）",
        "score": "风险评分",
        "hint": "在地图上画多边形或矩形，查询区域内的网格、隐患、住户和转移名单。",
        "level": {1: "低", 2: "中", 3: "高"},
    },
    "en": {
        "title": "Flood season: who is at risk",
        "districts": "District borders",
        "grids": "Grid outlines (zoom in)",
        "zones": "Flood zones",
        "low": "Low-lying land",
        "water": "Rivers and reservoirs",
        "ranked": f"Top {TOP_GRIDS} grids by risk",
        "hazards": "Unresolved flood hazards",
        "homes": "Vulnerable households per grid",
        "score": "Risk score",
        "hint": "Draw a polygon or rectangle to see the grids, hazards, households and the "
        "relocation list inside it.",
        "level": {1: "low", 2: "medium", 3: "high"},
    },
}
# The words of the area query's answer, shown by web/static/js/coordinator.js.
PANEL_WORDS = {
    "zh": {
        "area": "面积",
        "grids": "涉及网格",
        "hazards": "未处置隐患",
        "homes": "住户",
        "people": "人",
        "over60": "60岁以上",
        "alone": "独居",
        "mobility": "行动不便",
        "relocation": "转移名单（按优先级）",
        "withheld": "转移名单仅对协调员和管理员显示。",
        "suppressed": "数量较少的住户和隐患不予显示（–），以免识别到个人。",
        "busy": "查询中…",
        "csv": "下载 CSV",
        "xlsx": "下载 Excel",
    },
    "en": {
        "area": "Area",
        "grids": "Grids touched",
        "hazards": "Unresolved hazards",
        "homes": "Households",
        "people": "people",
        "over60": "over 60",
        "alone": "living alone",
        "mobility": "mobility needs",
        "relocation": "Relocation list (by priority)",
        "withheld": "The relocation list is shown to coordinators and administrators only.",
        "suppressed": "Counts of only a few households or hazards are withheld (–): they could "
        "identify people.",
        "busy": "Querying…",
        "csv": "Download CSV",
        "xlsx": "Download Excel",
    },
}


def coordinator_map(
    conn: Connection,
    v: Versions,
    rules: RiskSettings,
    f: ReportFilter,
    households: bool,
    k: int,
    lang: str = "zh",
    basemap: MapSettings | None = None,
) -> tuple[str, bool]:
    """Return (the coordinator map page, was cached) for the scope of `f` (its other filters
    are not used); household counts only when `households`. Cached per data version and scope,
    with a navigation slot (web.templating.with_session)."""
    base = basemap or MapSettings()
    key = ("coordinator-map", risk_versions(conn, v), rules.model_dump_json(), lang,
           base.model_dump_json(), f.scope, households, k)  # fmt: skip
    return cached(key, lambda: _build(conn, v, rules, f, households, k, lang, base))


def _layer(conn: Connection, kind: str, gcj: bool) -> dict:
    return geojson_to_gcj02(orjson.loads(risk_layers.geojson(conn, kind, SIMPLIFY_DEG)), gcj)


def _ranked(
    conn: Connection, v: Versions, rules: RiskSettings, districts: tuple[str, ...] | None
) -> pd.DataFrame | None:
    """Return the grids ranked by flood risk, of the given districts only (None: every grid);
    None when there are none."""
    if districts is None:
        return ranking(conn, RankSpec(), rules, v)
    frames = []
    for code in districts:
        try:
            frames.append(ranking(conn, RankSpec(district=code), rules, v))
        except NotFound:
            continue  # a district without comprehensive grids adds nothing
    if not frames:
        return None
    ranked = pd.concat(frames, ignore_index=True)
    ranked = ranked.sort_values(["score", "code"], ascending=[False, True], kind="stable")
    ranked["rank"] = range(1, len(ranked) + 1)
    return ranked.reset_index(drop=True)


def _build(
    conn: Connection,
    v: Versions,
    rules: RiskSettings,
    f: ReportFilter,
    households: bool,
    k: int,
    lang: str,
    base: MapSettings,
) -> str:
    lab = LABELS[lang]
    gcj = base.basemap == "gaode"
    layer = grid_layer(conn, v)
    m = base_map(base, layer, SCRIPTS, zoom_start=8)
    add_html(m, "maps/map_nav.html", slot=NAV_SLOT)
    add_district_borders(m, conn, lab["districts"], gcj)
    add_grid_outlines(m, lab["grids"], gcj)
    _add_flood_zones(m, conn, lab, gcj)
    _add_water(m, conn, lab["water"], gcj)
    ranked = _ranked(conn, v, rules, f.scope.districts)
    if ranked is not None and not households:
        # The score holds the vulnerable residents: withheld where they are few.
        ranked = withhold_households(ranked, np.zeros(len(ranked), dtype=bool), k, rules)
    if ranked is not None:
        _add_ranked_grids(m, ranked, layer, lab, gcj, households)
    # A grid nobody sends flood hazards from ranks low on hazards: shown as "quiet: check".
    flood = ReportFilter(theme="flood", scope=f.scope)
    right = HouseholdRight(everywhere=households)  # the scope's grids are the ones analysed
    add_quiet(m, quiet_result(conn, flood, QuietSpec.of(base), v, k, right), lang, gcj)
    # The hazards the principal may see, masked as their role sees them (geo.reports.queries).
    hazards = open_report_markers(conn, ReportFilter(theme="flood", scope=f.scope), lang)
    plugins.FastMarkerCluster(
        points_to_gcj02(hazards, gcj), name=lab["hazards"], callback=MARKER_CALLBACK
    ).add_to(m)
    if households and ranked is not None:
        _add_household_counts(m, ranked, layer, lab["homes"], gcj)
    _add_draw_tool(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds(grid_extent(layer, gcj))
    # A drawn polygon is in the basemap's coordinates: the panel tells the query which.
    add_html(
        m,
        "maps/coordinator_panel.html",
        lab=lab,
        words=PANEL_WORDS[lang],
        crs="gcj02" if gcj else "wgs84",
    )
    add_call(m, "riskgridQuery.attach")
    return render(m)


def _add_flood_zones(m: folium.Map, conn: Connection, lab: dict, gcj: bool) -> None:
    """Add the flood zones (shaded by level) and the low-lying land."""
    zones = _layer(conn, "flood_zone", gcj)
    if zones["features"]:
        folium.GeoJson(
            zones,
            name=lab["zones"],
            style_function=lambda ft: {
                "fillColor": ZONE_COLOURS.get(ft["properties"]["level"], "#9ecae1"),
                "color": ZONE_COLOURS.get(ft["properties"]["level"], "#9ecae1"),
                "weight": 0.5,
                "fillOpacity": 0.35,
            },
            tooltip=TextTooltip(["name", "level", "return_period_years"]),
        ).add_to(m)
    low = _layer(conn, "low_lying", gcj)
    if low["features"]:
        folium.GeoJson(
            low,
            name=lab["low"],
            style_function=lambda _: {
                "fillColor": "#41ab5d",
                "color": "#238b45",
                "weight": 1,
                "fillOpacity": 0.35,
            },
            tooltip=TextTooltip(["name", "level"]),
        ).add_to(m)


def _add_water(m: folium.Map, conn: Connection, name: str, gcj: bool) -> None:
    """Add the rivers and reservoirs as one layer."""
    water = {
        "type": "FeatureCollection",
        "features": _layer(conn, "river", gcj)["features"]
        + _layer(conn, "reservoir", gcj)["features"],
    }
    if not water["features"]:
        return
    folium.GeoJson(
        water,
        name=name,
        style_function=lambda _: {
            "color": "#2171b5",
            "weight": 3,
            "fillColor": "#6baed6",
            "fillOpacity": 0.7,
        },
        tooltip=TextTooltip(["name", "kind"]),
    ).add_to(m)


def _add_ranked_grids(
    m: folium.Map,
    ranked: pd.DataFrame,
    layer: GridLayer,
    lab: dict,
    gcj: bool,
    households: bool = True,
) -> None:
    """Add the TOP_GRIDS grids of highest risk, coloured by score, with the score's scale; their
    household counts only when `households`."""
    fields = [k for k in RANKED_FIELDS if households or k not in HOUSEHOLD_FIELDS]
    top = ranked[ranked["score"] > 0].head(TOP_GRIDS)
    if not len(top):
        return
    colours = branca.colormap.LinearColormap(
        ["#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"],
        vmin=float(top["score"].min()),
        vmax=float(top["score"].max()),
        caption=lab["score"],
    )
    feats = [
        {
            "type": "Feature",
            "geometry": orjson.loads(layer.geometry_json[layer.index[r.code]]),
            "properties": {k: _plain(getattr(r, k)) for k in fields},
        }
        for r in top.itertuples()
    ]
    folium.GeoJson(
        geojson_to_gcj02({"type": "FeatureCollection", "features": feats}, gcj),
        name=lab["ranked"],
        style_function=lambda ft: {
            "fillColor": colours(ft["properties"]["score"]),
            "color": "#555",
            "weight": 0.5,
            "fillOpacity": 0.7,
        },
        tooltip=TextTooltip(fields),
    ).add_to(m)
    colours.add_to(m)


def _plain(value: object) -> object:
    """Return a ranking value as JSON takes it: numpy's numbers as Python's, a missing one as
    None."""
    if isinstance(value, str):
        return value
    if pd.isna(value):  # type: ignore[call-overload]
        return None
    return value.item() if isinstance(value, np.generic) else value


def _add_household_counts(
    m: folium.Map, ranked: pd.DataFrame, layer: GridLayer, name: str, gcj: bool
) -> None:
    """Add a circle per grid with vulnerable households, sized by their residents (off at first)."""
    homes = ranked[ranked["vulnerable_households"] > 0].nlargest(TOP_GRIDS, "vulnerable_residents")
    centres = folium.FeatureGroup(name=name, show=False)
    shapes = layer.frame.set_index("code").geometry
    for r in homes.itertuples():
        p = shapes[r.code].representative_point()
        lat, lon = points_to_gcj02([[p.y, p.x]], gcj)[0]
        folium.CircleMarker(
            [lat, lon],
            radius=3 + min(12, r.vulnerable_residents / 10),
            color="#6a3d9a",
            fill=True,
            fill_opacity=0.6,
            weight=1,
            tooltip=_tooltip(f"{r.name}: {r.households} / {r.vulnerable_residents}"),
        ).add_to(centres)
    centres.add_to(m)


def _tooltip(text: str) -> str:
    # folium's Tooltip pastes its text as HTML into a JavaScript template literal: a grid named
    # `${...}` would run as script, one with `<img onerror>` as HTML. Escaped, both show as written.
    return html.escape(text).replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def _add_draw_tool(m: folium.Map) -> None:
    """Add the polygon and rectangle tools whose shapes run the area query."""
    plugins.Draw(
        export=False,
        draw_options={
            "polyline": False,
            "circle": False,
            "marker": False,
            "circlemarker": False,
            "polygon": {"allowIntersection": False, "showArea": True},
            "rectangle": True,
        },
        edit_options={"edit": False},
    ).add_to(m)
