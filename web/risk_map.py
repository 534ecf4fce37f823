"""The flood coordinator's map: flood layers, ranked grids, open hazards, household counts, and
a draw tool whose polygon runs the area query (`POST /api/v1/risk/query`) in the page.

Personal data never goes into the page: the relocation list comes from the API, and only to a
browser that holds a coordinator's token (kept in the tab's sessionStorage).
"""

from __future__ import annotations

import html

import branca
import folium
import orjson
from folium import plugins
from sqlalchemy import Connection

from geo.cache import Versions, cached
from geo.grids.layer import grid_layer
from geo.reports.queries import ReportFilter
from geo.risk import layers as risk_layers
from geo.risk.ranking import RankSpec, ranking, risk_versions
from geo.settings import MapSettings, RiskSettings
from web.folium_page import render
from web.maps import (
    MARKER_CALLBACK,
    add_district_borders,
    add_grid_outlines,
    add_script,
    base_map,
    geojson_to_gcj02,
    open_report_markers,
    points_to_gcj02,
)

TOP_GRIDS = 300  # ranked grids drawn; the full ranking is one click away (CSV/XLSX)
SIMPLIFY_DEG = 0.0003  # about 25 m: outlines for display, not measurement
ZONE_COLOURS = {1: "#9ecae1", 2: "#4292c6", 3: "#08306b"}
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
        "token": "协调员令牌",
        "save": "保存",
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
        "token": "Coordinator token",
        "save": "Save",
        "hint": "Draw a polygon or rectangle to see the grids, hazards, households and the "
        "relocation list inside it.",
        "level": {1: "low", 2: "medium", 3: "high"},
    },
}


def coordinator_map(
    conn: Connection,
    v: Versions,
    rules: RiskSettings,
    lang: str = "zh",
    basemap: MapSettings | None = None,
) -> tuple[str, bool]:
    """Return (the coordinator map page, was cached); cached per data version."""
    base = basemap or MapSettings()
    key = ("coordinator-map", risk_versions(conn, v), rules.model_dump_json(), lang,
           base.model_dump_json())  # fmt: skip
    return cached(key, lambda: _build(conn, v, rules, lang, base))


def _layer(conn: Connection, kind: str, gcj: bool) -> dict:
    return geojson_to_gcj02(orjson.loads(risk_layers.geojson(conn, kind, SIMPLIFY_DEG)), gcj)


def _build(conn: Connection, v: Versions, rules: RiskSettings, lang: str, base: MapSettings) -> str:
    lab = LABELS[lang]
    gcj = base.basemap == "gaode"
    m = base_map(base, zoom_start=8)
    add_district_borders(m, conn, lab["districts"], gcj)
    add_grid_outlines(m, lab["grids"], gcj)
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
            tooltip=folium.GeoJsonTooltip(["name", "level", "return_period_years"]),
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
            tooltip=folium.GeoJsonTooltip(["name", "level"]),
        ).add_to(m)
    water = {
        "type": "FeatureCollection",
        "features": _layer(conn, "river", gcj)["features"]
        + _layer(conn, "reservoir", gcj)["features"],
    }
    if water["features"]:
        folium.GeoJson(
            water,
            name=lab["water"],
            style_function=lambda _: {
                "color": "#2171b5",
                "weight": 3,
                "fillColor": "#6baed6",
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(["name", "kind"]),
        ).add_to(m)
    ranked = ranking(conn, RankSpec(), rules, v)
    top = ranked[ranked["score"] > 0].head(TOP_GRIDS)
    layer = grid_layer(conn, v)
    colours = branca.colormap.LinearColormap(
        ["#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"],
        vmin=float(top["score"].min()) if len(top) else 0.0,
        vmax=float(top["score"].max()) if len(top) else 100.0,
        caption=lab["score"],
    )
    feats = [
        {
            "type": "Feature",
            "geometry": orjson.loads(layer.geometry_json[layer.index[r.code]]),
            "properties": {
                "rank": int(r.rank),
                "name": r.name,
                "score": float(r.score),
                "households": int(r.households),
                "vulnerable_residents": int(r.vulnerable_residents),
                "open_flood_hazards": int(r.open_flood_hazards),
            },
        }
        for r in top.itertuples()
    ]
    if feats:
        folium.GeoJson(
            geojson_to_gcj02({"type": "FeatureCollection", "features": feats}, gcj),
            name=lab["ranked"],
            style_function=lambda ft: {
                "fillColor": colours(ft["properties"]["score"]),
                "color": "#555",
                "weight": 0.5,
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(
                [
                    "rank",
                    "name",
                    "score",
                    "households",
                    "vulnerable_residents",
                    "open_flood_hazards",
                ]
            ),
        ).add_to(m)
        colours.add_to(m)
    hazards = open_report_markers(conn, ReportFilter(theme="flood"), lang)
    plugins.FastMarkerCluster(
        points_to_gcj02(hazards, gcj), name=lab["hazards"], callback=MARKER_CALLBACK
    ).add_to(m)
    homes = ranked[ranked["vulnerable_households"] > 0].nlargest(TOP_GRIDS, "vulnerable_residents")
    centres = folium.FeatureGroup(name=lab["homes"], show=False)
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
            tooltip=f"{r.name}: {r.households} / {r.vulnerable_residents}",
        ).add_to(centres)
    centres.add_to(m)
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
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[45.38, 123.75], [47.48, 125.80]])
    panel = _panel(lab, lang)
    m.get_root().html.add_child(folium.Element(panel))
    crs = "'gcj02'" if gcj else "'wgs84'"  # a drawn polygon is in the basemap's coordinates
    add_script(
        m,
        "{{ this._parent.get_name() }}.on('draw:created', function (e) {"
        f"  riskgridQuery(e.layer.toGeoJSON().geometry, {crs});"
        "});",
    )
    return render(m)


def _panel(lab: dict, lang: str) -> str:
    """Return the side panel: token field, hint, and the script that runs the area query."""
    words = orjson.dumps(
        {
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
                "withheld": "转移名单仅对协调员显示：请先输入协调员令牌。",
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
                "withheld": "The relocation list is for coordinators: enter a coordinator token.",
                "busy": "Querying…",
                "csv": "Download CSV",
                "xlsx": "Download Excel",
            },
        }[lang]
    ).decode()
    return f"""
<div id="risk-panel" style="position:fixed;bottom:24px;left:10px;z-index:1000;width:340px;
 max-height:calc(100vh - 220px);overflow:auto;background:white;padding:10px 12px;
 border-radius:4px;font:13px/1.45 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">
 <b style="font-size:15px">{html.escape(lab["title"])}</b>
 <div style="margin:6px 0">
  <label for="risk-token">{html.escape(lab["token"])}</label><br>
  <input id="risk-token" type="password" style="width:220px" autocomplete="off">
  <button id="risk-token-save" type="button">{html.escape(lab["save"])}</button>
 </div>
 <div class="muted" style="color:#57606a">{html.escape(lab["hint"])}</div>
 <div id="risk-result" data-state="idle"></div>
</div>
<script>
(function () {{
  var W = {words};
  var tokenBox = document.getElementById('risk-token');
  tokenBox.value = sessionStorage.getItem('riskgrid-token') || '';
  document.getElementById('risk-token-save').onclick = function () {{
    sessionStorage.setItem('riskgrid-token', tokenBox.value.trim());
  }};
  function esc(s) {{
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {{
      return {{'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}}[c];
    }});
  }}
  function headers() {{
    var h = {{'Content-Type': 'application/json'}};
    var t = sessionStorage.getItem('riskgrid-token') || tokenBox.value.trim();
    if (t) h['Authorization'] = 'Bearer ' + t;
    return h;
  }}
  var last = null;
  function download(fmt) {{
    fetch('/api/v1/risk/query?format=' + fmt, {{method: 'POST', headers: headers(),
      body: JSON.stringify(last)}}).then(function (r) {{
        if (!r.ok) return r.json().then(function (b) {{ alert(b.detail); }});
        return r.blob().then(function (b) {{
          var a = document.createElement('a');
          a.href = URL.createObjectURL(b);
          a.download = fmt === 'csv' ? 'relocation.csv' : 'area_query.xlsx';
          a.click();
        }});
      }});
  }}
  window.riskgridQuery = function (geometry, crs) {{
    var out = document.getElementById('risk-result');
    out.dataset.state = 'busy';
    out.innerHTML = '<p>' + W.busy + '</p>';
    last = {{geometry: geometry, crs: crs, limit: 200}};
    fetch('/api/v1/risk/query', {{method: 'POST', headers: headers(), body: JSON.stringify(last)}})
      .then(function (r) {{ return r.json().then(function (b) {{ return [r.status, b]; }}); }})
      .then(function (res) {{
        var status = res[0], b = res[1];
        if (status !== 200) {{
          out.dataset.state = 'error';
          out.innerHTML = '<p style="color:#b42318">' + esc(b.detail) + '</p>';
          return;
        }}
        var h = b.households;
        var s = '<p><b>' + W.area + '</b> ' + b.area_km2.toFixed(2) + ' km²<br><b>' + W.grids +
          '</b> <span id="risk-grids">' + b.grids.length + '</span><br><b>' + W.hazards +
          '</b> ' + b.hazards.total + '<br><b>' + W.homes + '</b> <span id="risk-homes">' +
          h.households + '</span> (' + h.residents + ' ' + W.people + '; ' + W.over60 + ' ' +
          h.over_60 + ', ' + W.alone + ' ' + h.living_alone + ', ' + W.mobility + ' ' +
          h.mobility_needs + ')</p>';
        (b.notes || []).forEach(function (n) {{
          s += '<p style="color:#9a6700">' + esc(n) + '</p>';
        }});
        s += '<table id="risk-grid-table" style="width:100%;border-collapse:collapse">';
        b.grids.slice(0, 8).forEach(function (g) {{
          s += '<tr><td>' + esc(g.name) + '</td><td style="text-align:right">' +
            (g.share_inside * 100).toFixed(0) + '%</td></tr>';
        }});
        s += '</table>';
        if (b.relocation) {{
          s += '<p><b>' + W.relocation + '</b> (' + b.relocation_total + ')</p>' +
            '<ol id="risk-relocation">';
          b.relocation.slice(0, 30).forEach(function (r) {{
            s += '<li>' + esc(r.head_name) + ' · ' + esc(r.address) + ' · ' + esc(r.phone) +
              ' · ' + r.members + W.people + '</li>';
          }});
          s += '</ol><button type="button" id="risk-csv">' + W.csv + '</button> ';
        }} else {{
          s += '<p id="risk-withheld">' + W.withheld + '</p>';
        }}
        s += '<button type="button" id="risk-xlsx">' + W.xlsx + '</button>';
        out.innerHTML = s;
        out.dataset.state = 'done';
        var c = document.getElementById('risk-csv');
        if (c) c.onclick = function () {{ download('csv'); }};
        document.getElementById('risk-xlsx').onclick = function () {{ download('xlsx'); }};
      }})
      .catch(function (err) {{
        out.dataset.state = 'error';
        out.innerHTML = '<p style="color:#b42318">' + esc(err) + '</p>';
      }});
  }};
}})();
</script>"""
