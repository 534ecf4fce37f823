"""A Folium map rendered to a page: data rendered as text, every asset from riskgrid itself.

Folium renders each layer's script and then wraps the text in a branca `Element`, which
compiles it as a Jinja template and renders it again. Names and popups come from imported
files and reports, so a `{{ … }}` in a grid or zone name was evaluated on the server (template
injection), a `{#` broke the page, and lexing the page's data took 40 ms of a 300 ms build.
Elements made from a string are therefore kept as literal text: branca's own templates are
compiled when its classes are defined, and folium passes `Element` only rendered text.

The page's Content-Security-Policy runs only inline scripts that carry the response's nonce.
Pages are cached, so the nonce goes in per response (`with_nonce`), and only where Folium
writes its own code: the head, and the map's script after the body. Data reaches those scripts
as JSON with `<` written `\u003c` (folium's `tojson`), so no name can open or close a script
there; `render` refuses a page where one does.
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
    page = localize(m.get_root().render())
    _check_map_script(page)
    return page


def _check_map_script(page: str) -> None:
    """Raise ValueError when data in the map's script (after the body) holds markup that would
    end the script or start another: a nonce must never land on it."""
    tail = page.partition("</body>")[2]
    low = tail.lower()
    if not tail.lstrip().startswith("<script>") or low.count("</script") != 1:
        raise ValueError("the map's script is not one script after the body")
    if low.count("<script") != 1 or "<!--" in low:
        raise ValueError("the map's script holds markup: embed data as escaped JSON")


def with_nonce(page: str, nonce: str) -> str:
    """Return a Folium page whose own inline scripts and styles carry `nonce`: those of its head
    and the map's script after the body, never anything in the body (panels, data)."""
    head, end_head, rest = page.partition("</head>")
    body, end_body, tail = rest.partition("</body>")
    if not end_head or not end_body or not tail.lstrip().startswith("<script>"):
        raise ValueError("not a Folium page: no head, body and map script")
    attr = f' nonce="{nonce}"'
    head = head.replace("<script", "<script" + attr).replace("<style", "<style" + attr)
    tail = tail.replace("<script", "<script" + attr, 1)
    return head + end_head + body + end_body + tail
