"""A Folium map rendered to a page: data rendered as text, every asset from riskgrid itself.

Folium renders each layer's script and then wraps the text in a branca `Element`, which
compiles it as a Jinja template and renders it again. Names and popups come from imported
files and reports, so a `{{ … }}` in a grid or zone name was evaluated on the server (template
injection), a `{#` broke the page, and lexing the page's data took 40 ms of a 300 ms build.
Elements made from a string are therefore kept as literal text: branca's own templates are
compiled when its classes are defined, and folium passes `Element` only rendered text.
"""

from __future__ import annotations

import branca.element
import folium

from web.assets import localize


class LiteralText:
    """Stands where branca compiles an `Element`'s string: renders it unchanged."""

    def __init__(self, source: str) -> None:
        # As Jinja would: one trailing newline dropped, line endings normalised.
        text = source.replace("\r\n", "\n")
        self.source = text[:-1] if text.endswith("\n") else text

    def render(self, *args: object, **kwargs: object) -> str:
        """Return the text as given."""
        return self.source


branca.element.Template = LiteralText  # type: ignore[misc,assignment]


def render(m: folium.Map) -> str:
    """Return the map's whole HTML page, its assets served from riskgrid's /static."""
    return localize(m.get_root().render())
