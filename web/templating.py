"""The Jinja environment of every page and map panel, and the navigation they share.

Templates live in `web/templates/`, autoescaped; scripts and stylesheets in `web/static/`,
addressed through `static_url` so that a changed file is fetched anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import jinja2

from web.assets import WEB, static_url

NAV_LABEL = {"zh": "页面", "en": "Pages"}


LANGS = ("zh", "en")


COORDINATOR_PATH = "/maps/flood/coordinator"


# (key, address, zh, en): the pages every page links to.
NAV = (
    ("index", "/", "首页", "Start"),
    ("dashboard", "/dashboard", "创安行动看板", "Dashboard"),
    ("maps", "/maps/all", "全部专题地图", "Theme maps"),
    ("coordinator", COORDINATOR_PATH, "汛期协调地图", "Flood coordinator"),
    ("report", "/report", "网格员上报", "Report"),
    ("api", "/docs", "API", "API"),
)


LANG_NAMES = {"zh": "中文", "en": "English"}


def _count(n: int) -> str:
    return f"{n:,}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


# Templates are read once per process, like the static files' hashes: a deployment restarts.
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(WEB / "templates"),
    autoescape=True,
    auto_reload=False,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


TEMPLATES.globals["static_url"] = static_url


TEMPLATES.filters["count"] = _count


TEMPLATES.filters["pct"] = _pct


def render_template(name: str, **context: object) -> str:
    """Return the template `name` (under web/templates) rendered with `context`, autoescaped."""
    return TEMPLATES.get_template(name).render(**context)


def lang_url(path: str, query: str, lang: str) -> str:
    """Return `path?query` with its language set to `lang` (zh, the default, is left out)."""
    pairs = [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True) if k != "lang"]
    if lang != "zh":
        pairs.append(("lang", lang))
    return f"{path}?{urlencode(pairs)}" if pairs else path


@dataclass(frozen=True)
class NavLink:
    """One link of the navigation."""

    href: str
    label: str
    current: bool
    lang: str = ""  # the language of the label, when it is the language switch's


def navigation(path: str, query: str, lang: str) -> dict:
    """Return the navigation of a page at `path?query`: its links, and the language switch that
    keeps the path and the query."""
    links = []
    for key, href, zh, en in NAV:
        if key == "maps":
            current = path.startswith("/maps/") and path != COORDINATOR_PATH
        else:
            current = path == href
        target = href if key == "api" else lang_url(href, "", lang)
        links.append(NavLink(target, zh if lang == "zh" else en, current))
    languages = [
        NavLink(lang_url(path, query, code), LANG_NAMES[code], code == lang, code) for code in LANGS
    ]
    return {"label": NAV_LABEL[lang], "links": links, "languages": languages}
