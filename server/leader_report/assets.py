"""The browser code the report carries inside itself: Leaflet, its heatmap plugin and plotly's
basic bundle, from the npm packages `make` installs (package-lock.json), never from a CDN."""

from __future__ import annotations

import base64
import re
from functools import cache

from server.errors import GridwatchError
from server.settings import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"
FILES = {
    "leaflet_css": "leaflet/dist/leaflet.css",
    "leaflet_js": "leaflet/dist/leaflet.js",
    "heat_js": "leaflet.heat/dist/leaflet-heat.js",
    "plotly_js": "plotly.js-basic-dist-min/plotly-basic.min.js",
}
IMAGE_URL = re.compile(r"url\((images/[\w.-]+\.png)\)")


class AssetsMissing(GridwatchError):
    """The npm packages are not installed: the installation is incomplete, not the request."""

    status = 503
    code = "assets_missing"


@cache
def inline_assets() -> dict[str, str]:
    """Each file's text; Leaflet's CSS with its images (the layer switch's icon) as data URIs, so
    that opening the file fetches nothing."""
    texts = {}
    for name, relative in FILES.items():
        path = NODE_MODULES / relative
        if not path.is_file():
            raise AssetsMissing(f"{relative} is not installed: run `npm ci` (or `make run`)")
        texts[name] = path.read_text(encoding="utf-8")
    leaflet_dist = NODE_MODULES / "leaflet" / "dist"

    def data_uri(match: re.Match) -> str:
        image = (leaflet_dist / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(image).decode()})"

    texts["leaflet_css"] = IMAGE_URL.sub(data_uri, texts["leaflet_css"])
    # Inside an inline <script>, "</script" would end it early.
    for name in ("leaflet_js", "heat_js", "plotly_js"):
        texts[name] = texts[name].replace("</script", "<\\/script")
    return texts
