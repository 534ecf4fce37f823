"""Theme maps built with Folium from server-side aggregates, served with local assets only.

The page's size does not grow with the number of reports: the heat layer is drawn from hexagon
bins, the choropleth holds only grids with a significant Gi* class, and at most
`MAX_MARKERS` open reports are shown as markers.
"""

from __future__ import annotations

import html
from datetime import timedelta

import branca
import folium
import numpy as np
import orjson
import shapely
import shapely.geometry
from folium import plugins
from folium.template import Template
from sqlalchemy import Connection

from geo import coords
from geo.analytics import patterns, stats_process
from geo.analytics.gistar import GiResult, GiSpec, gistar_start
from geo.analytics.weights import weights
from geo.cache import Versions, cached, versions
from geo.grids import areas
from geo.grids.layer import coverage, grid_layer
from geo.reports import queries as report_queries
from geo.reports import taxonomy
from geo.reports.queries import ReportFilter
from geo.settings import MapSettings
from web.folium_page import render

# Caps that keep a page's size independent of the number of reports.
MAX_MARKERS = 300
MAX_HEAT_CELLS = 2500
MAX_FRAME_CELLS = 300
MAX_CLUSTERS = 60
DBSCAN_SAMPLE = 40_000  # more reports are clustered as a sample: the time stays bounded
WEEK_S = 7 * 86_400
SIMPLIFY_DEG = 0.0002
BORDER_DEG = 0.001  # district borders: ~100 m is plenty at the zooms they are read at
HEX_M = 1500.0
CENTRE = (46.45, 124.9)  # Daqing; the map fits the data's bounds anyway
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
THEMES = ("all", *taxonomy.THEME_BY_CODE)
GRID_OUTLINE_ZOOM = 13  # below it a view holds thousands of grids: too many to fetch and read
MAX_OUTLINES = 4000
# Grid outlines drawn from the grids API for the part of the map in view: the page stays the
# same size, and with no basemap (the default, offline) the grids are what a planner reads
# the map by. `GROUP` and `GCJ` are filled in when the page is built.
GRID_OUTLINES_JS = """(function (map, group, gcj) {
  var outlines = L.geoJSON(null, {style: {color: "#555", weight: 0.7, fill: false},
                                  interactive: false});
  group.addLayer(outlines);
  window.riskgridGridOutlines = outlines;  // for tests
  var turn = 0;
  async function draw() {
    var mine = ++turn;
    if (!map.hasLayer(group)) return;  // switched off in the layer control: fetch nothing
    if (map.getZoom() < MIN_ZOOM) { outlines.clearLayers(); return; }
    var b = map.getBounds().pad(0.05);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map(function (v) { return v.toFixed(5); }).join(",");
    var feats = [];
    try {
      for (var offset = 0; offset < MAX_OUTLINES;) {
        var r = await fetch("/api/v1/grids?limit=1000&offset=" + offset + "&bbox=" + bbox +
                            (gcj ? "&crs=gcj02" : ""));
        if (!r.ok) return;
        var fc = await r.json();
        if (mine !== turn) return;  // the map moved on meanwhile
        feats = feats.concat(fc.features);
        offset += fc.features.length;
        if (!fc.features.length || offset >= fc.numberMatched) break;
      }
    } catch (e) { return; }  // offline: the rest of the map still works
    outlines.clearLayers();
    outlines.addData({type: "FeatureCollection", features: feats});
  }
  map.on("moveend", draw);
  group.on("add", draw);
  draw();
})({{ this._parent.get_name() }}, GROUP, GCJ);"""
MARKER_CALLBACK = """function (row) {
    var marker = L.marker(new L.LatLng(row[0], row[1]));
    marker.bindPopup(row[2], {maxWidth: 260});
    return marker;
}"""


def _theme_label(code: str, lang: str) -> str:
    if code == "all":
        return LABELS[lang]["all"]
    t = taxonomy.THEME_BY_CODE[code]
    return t.zh if lang == "zh" else t.en


def open_report_markers(conn: Connection, f: ReportFilter, lang: str) -> list[list]:
    """Return [lat, lon, popup HTML] of the latest open reports, at most MAX_MARKERS."""
    lab = LABELS[lang]
    open_f = ReportFilter(**{**f.__dict__, "status": ("reported", "dispatched", "in_progress")})
    page = report_queries.page(conn, open_f, MAX_MARKERS, None)
    rows = []
    for raw in page["features_json"]:
        ft = orjson.loads(raw)
        p = ft["properties"]
        lon, lat = ft["geometry"]["coordinates"]
        cat = taxonomy.category(p["theme"], p["category"])
        cat_label = (cat.zh if lang == "zh" else cat.en) if cat else p["category"]
        popup = (
            f"<b>{html.escape(cat_label)}</b><br>{lab['status']}: {html.escape(p['status'])}"
            f"<br>{lab['grid']}: {html.escape(str(p['grid_name'] or p['grid'] or '-'))}"
            f"<br>{lab['reported']}: {html.escape(str(p['reported_at'])[:16])}"
            f"<br>{lab['department']}: {html.escape(str(p['department']))}"
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
        region = shapely.transform(shapely.coverage_union_all(cov[idx]), _round5)
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


def _round5(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, 5)


def warm_up(conn: Connection) -> None:
    """Prepare what the first theme map needs: the statistics process, weights, coverage."""
    stats_process.warm_up()
    layer = grid_layer(conn, versions(conn))
    weights(layer)
    coverage(layer, SIMPLIFY_DEG)


def _legend(lang: str) -> str:
    """Return a categorical legend of the Gi* classes and the other layers."""
    lab = LABELS[lang]
    swatches = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        f'vertical-align:middle;background:{colour};border:1px solid #777"></span>'
        f"{html.escape(lab[cls])}</div>"
        for cls, colour in CLASS_COLOURS.items()
    )
    cluster = (
        '<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        'vertical-align:middle;border:2px solid #6a3d9a"></span>'
        f"{html.escape(lab['clusters'])}</div>"
    )
    latest = f'<div style="margin-top:4px;color:#555">{html.escape(lab["latest"])}</div>'.replace(
        "{n}", str(MAX_MARKERS)
    )
    return (
        '<div class="legend" id="legend" style="position:fixed;bottom:60px;right:10px;'
        "z-index:1000;background:white;padding:8px 10px;border-radius:4px;font:13px sans-serif;"
        f'box-shadow:0 1px 4px rgba(0,0,0,.3)"><b>{html.escape(lab["legend"])}</b>'
        f"{swatches}{cluster}{latest}</div>"
    )


def _switcher(theme: str, lang: str, query: str) -> str:
    links = " | ".join(
        f"<b>{html.escape(_theme_label(t, lang))}</b>"
        if t == theme
        else f'<a href="/maps/{t}{query}">{html.escape(_theme_label(t, lang))}</a>'
        for t in THEMES
    )
    return (
        '<div id="theme-switcher" style="position:fixed;top:10px;left:60px;z-index:1000;'
        "background:white;padding:6px 10px;border-radius:4px;font:14px sans-serif;"
        f'box-shadow:0 1px 4px rgba(0,0,0,.3)">{html.escape(LABELS[lang]["theme"])}: {links}</div>'
    )


def theme_map(
    conn: Connection,
    v: Versions,
    theme: str,
    f: ReportFilter,
    lang: str = "zh",
    query: str = "",
    basemap: MapSettings | None = None,
) -> tuple[str, bool]:
    """Return (HTML page of one theme's map, was cached); cached per data version."""
    base = basemap or MapSettings()
    key = ("map", theme, f, lang, query, base.model_dump_json(), v)
    return cached(key, lambda: _build(conn, v, theme, f, lang, query, base))


def add_district_borders(m: folium.Map, conn: Connection, name: str, gcj: bool) -> None:
    """Add the district borders, simplified to ~100 m: orientation when there is no basemap."""
    districts = areas.outlines(conn, "district")
    if not len(districts):
        return
    # Simplified as a coverage, so neighbours keep one shared border, and rounded to ~1 m.
    geoms = shapely.coverage_simplify(np.asarray(districts.geometry.values), BORDER_DEG)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code},
                "geometry": shapely.geometry.mapping(shapely.transform(g, _round5)),
            }
            for code, g in zip(districts["code"], geoms, strict=True)
        ],
    }
    folium.GeoJson(
        geojson_to_gcj02(fc, gcj),
        name=name,
        style_function=lambda _: {"color": "#444", "weight": 1.2, "fill": False},
        interactive=False,
    ).add_to(m)


def add_grid_outlines(m: folium.Map, name: str, gcj: bool) -> None:
    """Add a layer of the grid outlines in view, fetched from the grids API when zoomed in."""
    group = folium.FeatureGroup(name=name).add_to(m)
    js = (
        GRID_OUTLINES_JS.replace("GROUP", group.get_name())
        .replace("GCJ", "true" if gcj else "false")
        .replace("MIN_ZOOM", str(GRID_OUTLINE_ZOOM))
        .replace("MAX_OUTLINES", str(MAX_OUTLINES))
    )
    add_script(m, js)


def base_map(base: MapSettings, **options: object) -> folium.Map:
    """Return an empty Folium map on the configured basemap, zoomable to 18."""
    m = folium.Map(location=CENTRE, max_zoom=18, tiles=None, control_scale=True, **options)
    # With no tile layer Leaflet has no maxZoom, and the marker cluster refuses to start.
    add_script(m, "{{ this._parent.get_name() }}.options.maxZoom = 18;")
    _tiles(m, base)
    return m


def add_script(m: folium.Map, js: str) -> None:
    """Add `js` to the map's script; `{{ this._parent.get_name() }}` names the map."""
    element = branca.element.MacroElement()
    element._template = Template("{% macro script(this, kwargs) %}" + js + "{% endmacro %}")
    m.add_child(element)


def _tiles(m: folium.Map, base: MapSettings) -> None:
    """Add the configured basemap (none by default: grid data only, no network)."""
    if base.basemap == "osm":
        folium.TileLayer("OpenStreetMap", max_zoom=18).add_to(m)
    elif base.basemap == "url":
        folium.TileLayer(base.tile_url, attr=base.tile_attribution, max_zoom=18).add_to(m)
    elif base.basemap == "tianditu":
        for layer in ("vec", "cva"):
            folium.TileLayer(
                f"http://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                f"&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={base.tianditu_key}",
                attr="天地图",
                subdomains="01234567",
                max_zoom=18,
                overlay=layer == "cva",
                name="天地图" if layer == "vec" else "天地图注记",
            ).add_to(m)
    elif base.basemap == "gaode":
        folium.TileLayer(
            "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}",
            attr="高德地图",
            subdomains="1234",
            max_zoom=18,
            name="高德",
        ).add_to(m)


def points_to_gcj02(points: list[list], gcj: bool) -> list[list]:
    """Shift [lat, lon, ...] rows onto a GCJ-02 basemap (Gaode draws in GCJ-02)."""
    if not gcj or not points:
        return points
    arr = np.asarray([[p[0], p[1]] for p in points], dtype=float)
    lon, lat = coords.wgs84_to_gcj02(arr[:, 1], arr[:, 0])
    return [
        [round(float(la), 6), round(float(lo), 6), *p[2:]]
        for la, lo, p in zip(lat, lon, points, strict=True)
    ]


def geojson_to_gcj02(fc: dict, gcj: bool) -> dict:
    """Shift a FeatureCollection onto a GCJ-02 basemap when `gcj`."""
    return coords.geojson_to_gcj02(fc) if gcj else fc


def _build(
    conn: Connection,
    v: Versions,
    theme: str,
    f: ReportFilter,
    lang: str,
    query: str,
    base: MapSettings,
) -> str:
    """Return the HTML page of one theme's map (all assets local)."""
    lab = LABELS[lang]
    gcj = base.basemap == "gaode"
    m = base_map(base, zoom_start=9, prefer_canvas=True)
    # esda computes Gi* in another process while this one runs the other layers' queries.
    gi = gistar_start(conn, f, GiSpec(), v, stats_process.submit)
    # Orientation first, so that it lies under the data layers.
    add_district_borders(m, conn, lab["districts"], gcj)
    add_grid_outlines(m, lab["grids"], gcj)
    heat = points_to_gcj02(
        [list(c) for c in patterns.hex_centres(conn, f, v, HEX_M, MAX_HEAT_CELLS)], gcj
    )
    # Density-aware: ten times the reports need ten times the points to make a cluster,
    # so the number of outlines (and the page) does not grow with the volume.
    found = patterns.dbscan(
        conn, f, v, 400.0, max(15, round(sum(p[2] for p in heat) / 1500)), sample_to=DBSCAN_SAMPLE
    )
    markers = open_report_markers(conn, f, lang)
    frames, index = _weekly(conn, f, v)
    sig = geojson_to_gcj02(_significant(gi(), lang), gcj)

    top = max((p[2] for p in heat), default=1)
    plugins.HeatMap(
        [[p[0], p[1], p[2] / top] for p in heat], name=lab["heat"], radius=18, min_opacity=0.3
    ).add_to(m)
    if sig["features"]:
        folium.GeoJson(
            sig,
            name=lab["gistar"],
            style_function=lambda ft: {
                "fillColor": CLASS_COLOURS[ft["properties"]["class"]],
                "color": "#555",
                "weight": 0.4,
                "fillOpacity": 0.6,
            },
            tooltip=folium.GeoJsonTooltip(["label", "grids", "reports"]),
        ).add_to(m)
    if found["features"]:
        folium.GeoJson(
            geojson_to_gcj02(
                {"type": "FeatureCollection", "features": found["features"][:MAX_CLUSTERS]}, gcj
            ),
            name=lab["clusters"],
            style_function=lambda _: {"color": "#6a3d9a", "weight": 2, "fillOpacity": 0.05},
            tooltip=folium.GeoJsonTooltip(["count", "dominant_category"]),
        ).add_to(m)
    # One data array and one callback instead of a script per marker: a fifth of the bytes.
    plugins.FastMarkerCluster(
        points_to_gcj02(markers, gcj), name=lab["reports"], callback=MARKER_CALLBACK
    ).add_to(m)
    if frames:
        plugins.HeatMapWithTime(
            [points_to_gcj02(fr, gcj) for fr in frames],
            index=index,
            name=lab["weekly"],
            radius=18,
            auto_play=False,
            min_opacity=0.3,
        ).add_to(m)
    m.get_root().html.add_child(folium.Element(_legend(lang)))
    folium.LayerControl(collapsed=False).add_to(m)
    if heat:
        lats = [p[0] for p in heat]
        lons = [p[1] for p in heat]
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    m.get_root().html.add_child(folium.Element(_switcher(theme, lang, query)))
    return render(m)
