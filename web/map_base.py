"""What every Folium page of riskgrid starts from: the basemap, orientation layers (district
borders, grid outlines), page templates and scripts, and the shift onto GCJ-02 tiles."""

from __future__ import annotations

import branca
import folium
import numpy as np
import shapely
import shapely.geometry
from folium.template import Template
from sqlalchemy import Connection

from geo import coords
from geo.grids import areas
from geo.grids.layer import GridLayer
from geo.settings import MapSettings
from web.templating import render_template

BORDER_DEG = 0.001  # district borders: ~100 m is plenty at the zooms they are read at


GRID_OUTLINE_ZOOM = 13  # below it a view holds thousands of grids: too many to fetch and read
MAX_OUTLINES = 4000


# The page scripts (web/static/js) every map loads; they define what the map's script calls.
# session.js first: the others send their API calls with the page's session.
MAP_SCRIPTS = ("js/session.js", "js/tooltips.js", "js/report-markers.js", "js/grid-outlines.js")


class TextTooltip(folium.GeoJsonTooltip):
    """A GeoJson layer's tooltip showing its `fields` as text (js/tooltips.js).

    folium's own pastes the property values into innerHTML: a grid or zone imported with the
    name `<img src=x onerror=...>` ran its script on hover.
    """

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.bindTooltip(function (layer) {"
        " return riskgridTooltip(layer.feature.properties, {{ this.fields|tojson }}); },"
        " {{ this.tooltip_options|tojavascript }});"
        "{% endmacro %}"
    )


def round5(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, 5)


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
                "geometry": shapely.geometry.mapping(shapely.transform(g, round5)),
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
    options = {"gcj": gcj, "minZoom": GRID_OUTLINE_ZOOM, "maxOutlines": MAX_OUTLINES}
    add_html(m, "maps/grid_outlines.html", options=options)
    add_call(m, "riskgridOutlineGrids", group)


def grid_extent(layer: GridLayer, gcj: bool = False) -> list[list[float]]:
    """Return [[south, west], [north, east]] of the grids, on the basemap's coordinates."""
    west, south, east, north = (float(x) for x in layer.frame.total_bounds)
    return points_to_gcj02([[south, west], [north, east]], gcj)


def base_map(
    base: MapSettings,
    layer: GridLayer,
    scripts: tuple[str, ...] = MAP_SCRIPTS,
    **options: object,
) -> folium.Map:
    """Return an empty Folium map on the configured basemap, centred on the grids, zoomable to
    18, with riskgrid's map stylesheets and the page `scripts` (under web/static)."""
    gcj = base.basemap == "gaode"
    (south, west), (north, east) = grid_extent(layer, gcj)
    centre = ((south + north) / 2, (west + east) / 2)
    m = folium.Map(location=centre, max_zoom=18, tiles=None, control_scale=True, **options)
    # With no tile layer Leaflet has no maxZoom, and the marker cluster refuses to start.
    add_script(m, "{{ this._parent.get_name() }}.options.maxZoom = 18;")
    _tiles(m, base)
    add_html(m, "maps/assets.html", scripts=scripts)
    return m


def add_script(m: folium.Map, js: str) -> None:
    """Add `js` to the map's script; `{{ this._parent.get_name() }}` names the map."""
    element = branca.element.MacroElement()
    element._template = Template("{% macro script(this, kwargs) %}" + js + "{% endmacro %}")
    m.add_child(element)


def add_call(m: folium.Map, function: str, *layers: folium.map.Layer) -> None:
    """Add to the map's script the call `function(map, *layers)` of a page script (web/static/js).

    The page scripts get Folium's objects this way, and their data from a JSON block: no
    JavaScript is written in Python.
    """
    names = ["{{ this._parent.get_name() }}", *(layer.get_name() for layer in layers)]
    add_script(m, f"{function}({', '.join(names)});")


def add_html(m: folium.Map, template: str, **context: object) -> None:
    """Add the template (under web/templates) to the page's body, autoescaped.

    The result is kept as literal text (web.folium_page): a name that reads `{{ 7*7 }}` stays
    as written.
    """
    m.get_root().html.add_child(folium.Element(render_template(template, **context)))


def _tiles(m: folium.Map, base: MapSettings) -> None:
    """Add the configured basemap (none by default: grid data only, no network)."""
    if base.basemap == "osm":
        # OpenStreetMap's tile policy asks for a Referer; the page's policy sends none outside
        # the site, so its tiles get the site's origin (never the path and query).
        folium.TileLayer("OpenStreetMap", max_zoom=18, referrer_policy="strict-origin").add_to(m)
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
