"""``GET /vendor/<package>/<file>``: browser packages from npm, served by gridwatch itself (no CDN).

`make` installs them with ``npm ci`` from ``package-lock.json`` into ``node_modules/``; only the
distribution folder of each package listed here is reachable, never the rest of ``node_modules``.
"""

from __future__ import annotations

from flask import Blueprint, send_from_directory

from server.errors import NotFound
from server.settings import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"

# npm package -> its folder of files meant for browsers.
PUBLISHED_FOLDERS = {
    "maplibre-gl": "dist",
}

blueprint = Blueprint("vendor", __name__)


@blueprint.get("/vendor/<package>/<path:filename>")
def vendor_file(package: str, filename: str):
    folder = PUBLISHED_FOLDERS.get(package)
    if folder is None:
        raise NotFound(f"no front-end package named {package!r} is served", field="package")
    root = NODE_MODULES / package / folder
    if not root.is_dir():
        raise NotFound(f"front-end package {package!r} is not installed: run `npm ci` (or `make run`)")
    # send_from_directory refuses paths that leave `root`. File names carry no version, so Flask's
    # default (no max-age, ETag) makes browsers revalidate: an upgrade is never served stale.
    return send_from_directory(root, filename)
