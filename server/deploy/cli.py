"""``gridwatch deploy``: configuration for the programs that run in front of gridwatch."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def deploy() -> None:
    """Configuration for what runs in front of gridwatch (docs/operations.md)."""


def _listen(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from server.deploy.nginx import DeployError, host_and_port

    try:
        host_and_port(value if ":" in value else f"*:{value}")
    except DeployError as error:
        raise click.BadParameter(str(error)) from error
    return value


@deploy.command("nginx")
@click.option("--upstream", required=True, metavar="HOST:PORT", help="gridwatch's workers (GRIDWATCH_PORT).")
@click.option(
    "--events-upstream",
    metavar="HOST:PORT",
    help="The change feed.  [default: the upstream's port + 1, as `gridwatch serve` runs it]",
)
@click.option("--listen", required=True, callback=_listen, metavar="[HOST:]PORT", help="nginx's HTTPS port.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to render into; nginx keeps its pid, logs and tile cache there too.",
)
@click.option(
    "--server-name", default="_", show_default=True, help="The site's host name (nginx server_name)."
)
@click.option(
    "--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate (PEM)."
)
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key.")
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="nginx's logs, e.g. /var/log/nginx for logrotate.  [default: OUT/logs]",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The tile cache, e.g. /var/cache/nginx/gridwatch.  [default: OUT/cache]",
)
@click.option(
    "--tile-cache/--no-tile-cache",
    default=True,
    show_default=True,
    help="nginx keeps tiles (always revalidated with gridwatch); docs/benchmarks.md weighs it.",
)
@click.option("--foreground", is_flag=True, help="`daemon off`: for a systemd unit or a test.")
def deploy_nginx(
    upstream: str,
    events_upstream: str | None,
    listen: str,
    out_dir: Path,
    server_name: str,
    cert: Path | None,
    key: Path | None,
    log_dir: Path | None,
    cache_dir: Path | None,
    tile_cache: bool,
    foreground: bool,
) -> None:
    """Render nginx.conf for gridwatch into OUT: TLS, gzip, the shared tile cache, the change
    feed on the same origin, the body limit. Without --cert/--key it makes a self-signed
    certificate (kept in OUT/tls for later renders)."""
    from server.deploy.nginx import (
        DeployError,
        NginxSite,
        feed_next_to,
        host_and_port,
        is_loopback,
        render,
        self_signed_certificate,
    )

    if (cert is None) != (key is None):
        raise click.UsageError("give both --cert and --key, or neither for a self-signed certificate")
    out_dir = out_dir.resolve()
    try:
        events_upstream = events_upstream or feed_next_to(upstream)
        for address in (upstream, events_upstream):
            if not is_loopback(host_and_port(address)[0]):
                click.secho(
                    f"warning: {address} is not a loopback address; gridwatch behind a proxy must"
                    " listen on loopback only (it believes the X-Forwarded-* headers)",
                    fg="yellow",
                    err=True,
                )
        out_dir.mkdir(parents=True, exist_ok=True)
        if cert is None:
            cert, key = self_signed_certificate(out_dir, "localhost" if server_name == "_" else server_name)
        site = NginxSite(
            upstream=upstream,
            events_upstream=events_upstream,
            listen=listen,
            server_name=server_name,
            cert=cert.resolve(),
            key=key.resolve(),
            foreground=foreground,
            tile_cache=tile_cache,
            log_dir=(log_dir or out_dir / "logs").resolve(),
            cache_dir=(cache_dir or out_dir / "cache").resolve(),
        )
        written = render(site, out_dir)
    except DeployError as error:
        raise click.ClickException(str(error)) from error
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"run: nginx -p {out_dir} -c {out_dir / 'nginx.conf'}")
    click.echo("gridwatch behind it: GRIDWATCH_TRUSTED_PROXIES=1 GRIDWATCH_EVENTS_URL=/api/v1/events")
