"""Offline page assets: build `web/static/vendor` from npm packages and the folium wheel,
rewrite every CDN address a Folium page carries to riskgrid's own `/static` route, and give
every static file an address that changes with its content.

An intranet with no internet shows nothing of a map whose Leaflet comes from a CDN. `make
setup` runs `npm ci` in `web/` (versions pinned in package-lock.json) and then
`python -m web.assets`, which copies what the pages load into `web/static/vendor/`.
riskgrid's own scripts and stylesheets live beside it in `web/static/js` and `web/static/css`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
from pathlib import Path

import folium

WEB = Path(__file__).resolve().parent
NODE = WEB / "node_modules"
STATIC = WEB / "static"
VENDOR = STATIC / "vendor"
PREFIX = "/static"

# Folders and files copied from npm packages: (source under node_modules, target under vendor)
COPIES: tuple[tuple[str, str], ...] = (
    ("leaflet/dist", "leaflet"),
    ("jquery/dist/jquery.min.js", "jquery/jquery.min.js"),
    ("bootstrap/dist/css", "bootstrap/css"),
    ("bootstrap/dist/js", "bootstrap/js"),
    ("@fortawesome/fontawesome-free/css", "fontawesome/css"),
    ("@fortawesome/fontawesome-free/webfonts", "fontawesome/webfonts"),
    ("d3/d3.min.js", "d3/d3.min.js"),
    ("leaflet.markercluster/dist", "markercluster"),
    ("leaflet-timedimension/dist", "timedimension"),
    ("iso8601-js-period/iso8601.js", "iso8601/iso8601.js"),
    ("leaflet.awesome-markers/dist", "awesome-markers"),
    ("leaflet-draw/dist", "leaflet-draw"),
    ("bootstrap3/dist/fonts", "glyphicons/fonts"),
    # The campaign and evaluation pages' charts (web/static/js/charts.js).
    ("echarts/dist/echarts.min.js", "echarts/echarts.min.js"),
    # The API docs, /docs (Swagger UI) and /redoc: FastAPI's pages would load them from a CDN.
    ("swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"),
    ("swagger-ui-dist/swagger-ui.css", "swagger-ui/swagger-ui.css"),
    ("swagger-ui-dist/favicon-32x32.png", "swagger-ui/favicon-32x32.png"),
    ("redoc/bundles/redoc.standalone.js", "redoc/redoc.standalone.js"),
)
# What the /docs and /redoc pages load (under vendor/), checked after the build like URLS.
DOCS_FILES = (
    "swagger-ui/swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css",
    "swagger-ui/favicon-32x32.png",
    "redoc/redoc.standalone.js",
    "redoc/logo-mini.svg",
)
# ReDoc 2 draws its "powered by" logo from a CDN: the bundle gets a local one instead.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
REDOC_LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="16" viewBox="0 0 60 16">'
    '<text x="0" y="12" font-family="sans-serif" font-size="12" fill="#32329f">Redoc</text>'
    "</svg>\n"
)
FOLIUM_FILES = ("leaflet_heat.min.js", "pa7_hm.min.js", "pa7_leaflet_hm.min.js")

# Every address Folium 0.20 and branca write into a page, and the local file that replaces it.
URLS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/js/bootstrap.bundle.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": "glyphicons/glyphicons.css",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": "awesome-markers/leaflet.awesome-markers.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": "awesome-markers/leaflet.awesome-markers.css",
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": "riskgrid/leaflet.awesome.rotate.css",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": "d3/d3.min.js",
    "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": "folium/leaflet_heat.min.js",
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_hm.min.js": "folium/pa7_hm.min.js",
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_leaflet_hm.min.js": "folium/pa7_leaflet_hm.min.js",
    "https://cdn.jsdelivr.net/npm/iso8601-js-period@0.2.1/iso8601.min.js": "iso8601/iso8601.js",
    "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js": "timedimension/leaflet.timedimension.min.js",
    "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css": "timedimension/leaflet.timedimension.control.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js": "markercluster/leaflet.markercluster.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": "markercluster/MarkerCluster.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": "markercluster/MarkerCluster.Default.css",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js": "leaflet-draw/leaflet.draw.js",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.css": "leaflet-draw/leaflet.draw.css",
}
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](https?://[^"']+)""")


class AssetsMissing(RuntimeError):
    """The vendored assets are not built: `make setup` (npm ci, python -m web.assets) does it."""


@functools.cache
def _digest(path: str) -> str:
    # Once per file and process: a deployment that changes a file restarts the server.
    return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    """Return the address of `web/static/<path>`, versioned by the file's content hash.

    A changed file gets a new address, so a phone that cached the old script for a year (the
    `/static` route lets it) fetches the new one at once.
    """
    if not (STATIC / path).is_file():
        raise AssetsMissing(f"web/static/{path} is missing (vendor files: `make setup`)")
    return f"{PREFIX}/{path}?v={_digest(path)}"


def localize(html: str) -> str:
    """Return `html` with every known CDN address replaced by its `/static/vendor` copy.

    Raises ValueError when the page still loads anything from outside: better a failed page in
    development than a blank one on an offline intranet.
    """
    for url, local in URLS.items():
        if url in html:
            html = html.replace(url, static_url(f"vendor/{local}"))
    left = sorted(set(_EXTERNAL.findall(html)))
    if left:
        raise ValueError(f"page still loads from outside: {left}; add them to web.assets.URLS")
    return html


def missing() -> list[str]:
    """Return the vendored files the pages need that are not built yet."""
    needed = [*URLS.values(), *DOCS_FILES]
    return [local for local in needed if not (VENDOR / local).exists()]


def _glyphicons_css() -> str:
    # Only the glyphicon rules of Bootstrap 3 (the timedimension control's icons): the whole
    # stylesheet would restyle the Bootstrap 5 page.
    css = (NODE / "bootstrap3" / "dist" / "css" / "bootstrap.css").read_text(encoding="utf-8")
    face = re.search(r"@font-face\s*{[^}]*Glyphicons Halflings[^}]*}", css)
    rules = re.findall(r"\.glyphicon[^{]*{[^}]*}", css)
    if face is None or not rules:
        raise AssetsMissing("bootstrap 3 stylesheet has no glyphicon rules")
    return face.group(0).replace("../fonts/", "fonts/") + "\n" + "\n".join(rules) + "\n"


def _localize_redoc() -> None:
    bundle = VENDOR / "redoc" / "redoc.standalone.js"
    text = bundle.read_text(encoding="utf-8")
    if REDOC_LOGO not in text or "cdn.redoc.ly" in text.replace(REDOC_LOGO, ""):
        raise AssetsMissing(f"{bundle.name}: its CDN addresses changed; update _localize_redoc")
    bundle.write_text(
        text.replace(REDOC_LOGO, f"{PREFIX}/vendor/redoc/logo-mini.svg"), encoding="utf-8"
    )
    (VENDOR / "redoc" / "logo-mini.svg").write_text(REDOC_LOGO_SVG, encoding="utf-8")


def build() -> list[str]:
    """Copy the assets into web/static/vendor; return the files written (relative paths)."""
    if not NODE.exists():
        raise AssetsMissing(f"{NODE} is missing: run `npm ci --prefix web` (make setup does)")
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    for src, dst in COPIES:
        s, d = NODE / src, VENDOR / dst
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d)
        else:
            shutil.copy2(s, d)
    templates = Path(folium.__file__).parent / "templates"
    (VENDOR / "folium").mkdir(parents=True, exist_ok=True)
    for name in FOLIUM_FILES:
        shutil.copy2(templates / name, VENDOR / "folium" / name)
    (VENDOR / "glyphicons" / "glyphicons.css").write_text(_glyphicons_css(), encoding="utf-8")
    # The timedimension stylesheets fetch glyphicon fonts from a CDN themselves.
    for css in (VENDOR / "timedimension").glob("*.css"):
        text = css.read_text(encoding="utf-8")
        css.write_text(
            text.replace(
                "//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/", "../glyphicons/fonts/"
            ),
            encoding="utf-8",
        )
    outside = [
        str(p.relative_to(VENDOR))
        for p in VENDOR.rglob("*.css")
        if re.search(r"url\(\s*['\"]?(?:https?:)?//", p.read_text(encoding="utf-8"))
    ]
    if outside:
        raise AssetsMissing(f"stylesheets still load from outside: {outside}")
    _localize_redoc()
    (VENDOR / "riskgrid").mkdir(parents=True, exist_ok=True)
    shutil.copy2(STATIC / "leaflet.awesome.rotate.css", VENDOR / "riskgrid")
    absent = missing()
    if absent:
        raise AssetsMissing(f"assets not found after the build: {absent}")
    return sorted(str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file())


if __name__ == "__main__":
    files = build()
    print(f"web/static/vendor: {len(files)} files")
