"""nginx in front of gridwatch: fill the templates in deploy/nginx/ into a directory nginx runs
from (``nginx -p DIR -c DIR/nginx.conf``), with a self-signed certificate when none is given.

The templates' placeholders are ``{{name}}``: nginx's own ``$variables`` pass untouched.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from server.app import MAX_REQUEST_BYTES
from server.errors import body_too_large
from server.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "deploy" / "nginx"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
CERTIFICATE_DAYS = 825


class DeployError(Exception):
    """A setting nginx cannot use, or a certificate that could not be made."""


@dataclass(frozen=True)
class NginxSite:
    upstream: str  # gridwatch's workers, HOST:PORT
    events_upstream: str  # the change feed, HOST:PORT
    listen: str  # nginx's TLS port, [HOST:]PORT
    server_name: str
    cert: Path
    key: Path
    foreground: bool  # "daemon off": for systemd units and tests
    tile_cache: bool  # off: tiles pass through, each revalidated by gridwatch alone
    log_dir: Path
    cache_dir: Path


def host_and_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` split, the port checked (an IPv6 host in brackets)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DeployError(f"{address!r} is not HOST:PORT")
    return host, int(port)


def feed_next_to(upstream: str) -> str:
    """Where `gridwatch serve` runs the change feed by default: the workers' port + 1."""
    host, port = host_and_port(upstream)
    return f"{host}:{port + 1}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fill(template: str, values: Mapping[str, str]) -> str:
    missing = sorted(set(PLACEHOLDER.findall(template)) - values.keys())
    if missing:
        raise DeployError(f"no value for the template's {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def nginx_string(text: str) -> str:
    """``text`` inside nginx's single quotes. nginx has no escape for "$": refuse it rather
    than let nginx read a variable."""
    if "$" in text:
        raise DeployError(f"nginx would read a variable in {text!r}")
    return text.replace("\\", "\\\\").replace("'", "\\'")


def body_too_large_page() -> str:
    """gridwatch's own 413 answer, as JSON (English: nginx cannot follow Accept-Language)."""
    return json.dumps(body_too_large(MAX_REQUEST_BYTES).to_dict("en"), ensure_ascii=False)


def self_signed_certificate(out_dir: Path, name: str) -> tuple[Path, Path]:
    """A certificate and key for ``name`` in ``out_dir`` (made once, then kept: browsers that
    were told to trust it keep trusting it)."""
    cert, key = out_dir / "tls" / "gridwatch.crt", out_dir / "tls" / "gridwatch.key"
    if cert.exists() and key.exists():
        return cert, key
    if shutil.which("openssl") is None:
        raise DeployError("no certificate given and no openssl command to make one: pass --cert and --key")
    cert.parent.mkdir(mode=0o700, exist_ok=True)
    alt_names = f"DNS:{name},DNS:localhost,IP:127.0.0.1,IP:::1"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", str(CERTIFICATE_DAYS),
        "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_names}",
    ]  # fmt: skip
    made = subprocess.run(command, capture_output=True, text=True)
    if made.returncode != 0:
        raise DeployError(f"openssl could not make a certificate: {made.stderr.strip()}")
    key.chmod(0o600)
    return cert, key


def render(site: NginxSite, out_dir: Path) -> list[Path]:
    """Write nginx.conf and gridwatch.conf into ``out_dir``, and make the folders nginx writes
    to; returns the files written."""
    for address in (site.upstream, site.events_upstream):
        host_and_port(address)
    values = {
        "dir": str(out_dir),
        "log_dir": str(site.log_dir),
        "cache_dir": str(site.cache_dir),
        "daemon": "daemon off;" if site.foreground else "",
        "upstream": site.upstream,
        "events_upstream": site.events_upstream,
        "listen": site.listen,
        "server_name": site.server_name,
        "cert": str(site.cert),
        "key": str(site.key),
        "tile_cache": "gridwatch_tiles" if site.tile_cache else "off",
        "max_body_bytes": str(MAX_REQUEST_BYTES),
        "body_too_large": nginx_string(body_too_large_page()),
    }
    # nginx makes the subfolders of the cache and of temp/ itself, owned by its worker user.
    for directory in (out_dir / "temp", site.log_dir, site.cache_dir):
        directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("nginx.conf", "gridwatch.conf"):
        path = out_dir / name
        path.write_text(fill((TEMPLATES / name).read_text(), values))
        written.append(path)
    return written
