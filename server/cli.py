"""``gridwatch``: the single entry point for running, loading and importing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click
import psycopg
from psycopg.rows import dict_row

from server.cli_support import fail
from server.db.cli import db, db_migrate, db_up
from server.deploy.cli import deploy
from server.errors import GridwatchError
from server.settings import Settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """gridwatch: GIS map server and dashboard for county grid centers."""
    ctx.obj = Settings()


@main.command()
@click.pass_obj
def doctor(settings: Settings) -> None:
    """Check this installation: database, extensions, roles, migrations, settings, disk, clock,
    backups and standbys. Exits 1 when something must be fixed."""
    from server.doctor import OK, PROBLEM, run_checks

    findings = run_checks(settings)
    marks = {OK: ("ok", "green"), PROBLEM: ("PROBLEM", "red")}
    for finding in findings:
        mark, colour = marks.get(finding.level, ("warning", "yellow"))
        click.echo(f"{click.style(f'{mark:<8}', fg=colour)}{finding.check}: {finding.message}")
    problems = sum(finding.level == PROBLEM for finding in findings)
    if problems:
        fail(f"{problems} problem(s) to fix")
    click.echo("this installation is fit to run")


# -- demo data and imports ----------------------------------------------------------------


@main.group()
def demo() -> None:
    """The demo county: Hongya County (洪雅县), Meishan, Sichuan."""


@demo.command("load")
@click.option("--seed", default=2184, show_default=True, help="Random seed; same seed, same county.")
@click.option(
    "--incidents",
    "incident_count",
    default=60_000,
    show_default=True,
    type=click.IntRange(0, 20_000_000),
    help="How many incidents over two years.",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when grids are already loaded.")
@click.pass_obj
def demo_load(settings: Settings, seed: int, incident_count: int, if_empty: bool) -> None:
    """Replace all data with the generated demo county."""
    from server.demo import load_demo

    url = settings.resolved_owner_url()
    if if_empty:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT EXISTS (SELECT 1 FROM grids)").fetchone()[0]:
                click.echo("grids already loaded; skipping the demo load")
                return
    try:
        summary = load_demo(url, seed=seed, incident_count=incident_count, progress=True)
    except GridwatchError as error:
        fail(f"demo load: {error.message}")
    click.echo(summary.describe())


@demo.command("live")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of the county's time per real second: 60 runs an hour of it in a minute.",
)
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many real seconds.")
@click.option("--seed", type=int, help="Random seed of what happens; default: a fresh one.")
@click.pass_obj
def demo_live(settings: Settings, speed: float, duration: float | None, seed: int | None) -> None:
    """Keep the demo county alive after its load: reports at its daily rhythm, cases moved
    through the workflow and patrols, by the service functions of the API (docs/demo.md).
    Runs until SIGINT (Ctrl-C) or SIGTERM."""
    import threading

    from server.demo.live import LiveCounty

    stop = threading.Event()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in handlers:
        signal.signal(signum, lambda _signum, _frame: stop.set())

    def report(county: LiveCounty) -> None:
        click.echo(f"demo live, county time {county.county_now():%Y-%m-%d %H:%M}: {county.stats.line()}")

    county = LiveCounty(settings.resolved_owner_url(), speed=speed, seed=seed)
    click.echo(f"demo live: the county's clock runs at {speed:g}x; SIGINT or SIGTERM stops it")
    try:
        stats = county.run(stop, duration=duration, report=report)
    except GridwatchError as error:
        fail(f"demo live: {error.message}")
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    click.echo(f"demo live stopped: {stats.line()}")


@main.command("report")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day.  [default: last month's first]"
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day after the last.  [default: this month's first]",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The HTML file to write."
)
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language.  [default: the server's, zh]")
@click.option("--grid", help="A township's or village's code: its own report.")
@click.option(
    "--by", "made_by", default="gridwatch", show_default=True, help="Who made it (printed in the report)."
)
@click.pass_obj
def report(
    settings: Settings, start, end, out: Path, lang: str | None, grid: str | None, made_by: str
) -> None:
    """The leader report: one HTML file that opens anywhere without a network."""
    from tqdm import tqdm

    from server import clock
    from server.leader_report.service import STEPS, import_in_background, make_report, write_atomically

    if not out.parent.is_dir():
        fail(f"--out: the folder {out.parent} does not exist")
    import_in_background()
    with tqdm(total=len(STEPS) + 1, unit="step", disable=None) as bar:

        def step(name: str) -> None:
            bar.set_description(name)
            bar.update(1)

        try:
            with psycopg.connect(settings.resolved_owner_url(), row_factory=dict_row) as conn:
                html, _ = make_report(
                    conn,
                    start=start.date() if start else None,
                    end=end.date() if end else None,
                    area=grid,
                    lang=lang or settings.default_language,
                    made_by=made_by,
                    settings=settings,
                    now=clock.now(),
                    step=step,
                )
        except GridwatchError as error:
            fail(f"{error.field or 'report'}: {error.message}" if error.field else error.message)
        step("write")
        write_atomically(out, html)
    click.echo(f"wrote {out} ({len(html.encode()) / 1024 / 1024:.1f} MiB)")


@main.group("import")
def import_() -> None:
    """Import grids or incidents from files, in one transaction."""


@import_.command("grids")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", help="Layer name in a GeoPackage.")
@click.option("--source-crs", help="CRS if the file has none or a wrong one: EPSG:4543, GCJ-02, ...")
@click.option("--encoding", help="Text encoding of a Shapefile without .cpg, e.g. GBK.")
@click.option("--code-field", default="code", show_default=True)
@click.option("--name-field", default="name", show_default=True, help="Chinese name.")
# Optional attributes: by default read from the column of the same name when the file has one.
@click.option("--name-en-field", help="English name.  [default: name_en, if present]")
@click.option("--parent-field", help="Parent's code.  [default: parent, if present]")
@click.option("--level-field", help="Level; default: one below the parent.  [default: level, if present]")
@click.option("--households-field", help="[default: households, if present]")
@click.option("--population-field", help="[default: population, if present]")
@click.option("--strict", is_flag=True, help="A gap between sibling grids fails the import, not a warning.")
@click.pass_obj
def import_grids_command(
    settings: Settings,
    path: Path,
    layer: str | None,
    source_crs: str | None,
    encoding: str | None,
    strict: bool,
    **fields: str | None,
) -> None:
    """Import a grid tree from GeoJSON, GeoPackage or Shapefile (docs/importing.md)."""
    from server.importers.grids import GridFieldMap, import_grids

    field_map = GridFieldMap(**{key.removesuffix("_field"): value for key, value in fields.items()})
    try:
        with psycopg.connect(settings.resolved_owner_url()) as conn:
            result = import_grids(
                conn=conn,
                path=path,
                layer=layer,
                fields=field_map,
                source_crs=source_crs,
                encoding=encoding,
                strict=strict,
            )
    except GridwatchError as error:
        fail(f"import failed, nothing was changed: {error.message}")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"imported {result.count} grids from {path.name}")


@import_.command("incidents")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--crs",
    type=click.Choice(["wgs84", "gcj02"]),
    default="wgs84",
    show_default=True,
    help="gcj02: points picked on a Gaode/Tencent map, converted to WGS84.",
)
@click.pass_obj
def import_incidents_command(settings: Settings, path: Path, crs: str) -> None:
    """Import incidents from CSV (lon, lat, category, ...) or GeoJSON (docs/importing.md)."""
    from server.importers.incidents import import_incidents

    try:
        with psycopg.connect(settings.resolved_owner_url()) as conn:
            count = import_incidents(conn=conn, path=path, crs=crs)
    except GridwatchError as error:
        fail(f"import failed, nothing was changed: {error.message}")
    click.echo(f"imported {count} incidents from {path.name}")


# -- users ------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """People who use gridwatch, their roles and API tokens."""


@users.command("create")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["inspector", "operator", "department", "leader", "admin"])
)
@click.option("--display-name", help="Name shown in the app (default: the username).")
@click.option("--grid", "grid_code", help="Grid code this inspector walks (makes them its member).")
@click.option("--department", "department_code", help="Department code of a department handler.")
@click.option("--password", is_flag=True, help="Also set a password for browser login (prompted).")
@click.pass_obj
def users_create(
    settings: Settings,
    username: str,
    role: str,
    display_name: str | None,
    grid_code: str | None,
    department_code: str | None,
    password: bool,
) -> None:
    """Add a user; the last line printed is a new API token (shown only once)."""
    from server.auth.users import create_user, issue_token

    secret = click.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    try:
        with psycopg.connect(settings.resolved_owner_url(), row_factory=dict_row) as conn:
            user = create_user(
                conn,
                username=username,
                role=role,
                display_name=display_name,
                grid_code=grid_code,
                department_code=department_code,
                password=secret,
            )
            token = issue_token(conn, user_id=user.id, label="gridwatch users create")
    except GridwatchError as error:
        fail(f"user not created: {error.message}")
    click.echo(f"created user {user.username} (id {user.id}, role {user.role}); API token:")
    click.echo(token)


@main.group()
def incidents() -> None:
    """Incident housekeeping."""


@incidents.command("escalate-overdue")
@click.pass_obj
def incidents_escalate_overdue(settings: Settings) -> None:
    """Escalate overdue open incidents one level (run it every few minutes, e.g. from cron)."""
    from datetime import UTC, datetime

    from server.incidents.service import escalate_overdue

    with psycopg.connect(settings.resolved_owner_url(), row_factory=dict_row) as conn:
        moved = escalate_overdue(conn, now=datetime.now(UTC))
    click.echo(f"escalated {moved} overdue incidents")


@main.group()
def tiles() -> None:
    """Tile housekeeping."""


@tiles.command("prune-changes")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650))
@click.pass_obj
def tiles_prune_changes(settings: Settings, days: int) -> None:
    """Delete change-feed events older than DAYS (run it daily, e.g. from cron)."""
    from datetime import timedelta

    from server.tiles.changes import prune_change_events

    with psycopg.connect(settings.resolved_owner_url()) as conn:
        removed = prune_change_events(conn, older_than=timedelta(days=days))
    click.echo(f"removed {removed} change-feed events older than {days} days")


# -- serving ----------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Default: GRIDWATCH_HOST or 127.0.0.1.")
@click.option("--port", default=None, type=int, help="Default: GRIDWATCH_PORT or 8000.")
@click.option("--workers", default=None, type=int, help="Default: GRIDWATCH_WORKERS or 2.")
@click.option("--events-port", default=None, type=int, help="The change feed's port. Default: PORT + 1.")
@click.option(
    "--only",
    type=click.Choice(["api", "feed"]),
    default=None,
    help="Run one of the two servers (e.g. one systemd unit each); default both.",
)
@click.pass_obj
def serve(
    settings: Settings,
    host: str | None,
    port: int | None,
    workers: int | None,
    events_port: int | None,
    only: str | None,
) -> None:
    """Serve the API, tiles and dashboard with gunicorn, and the change feed beside it (an
    asyncio server of its own: an open stream costs it memory, not a worker thread)."""
    host = host or settings.host
    settings = settings.model_copy(
        update={"port": port or settings.port, "events_port": events_port or settings.events_port}
    )
    if only == "feed":
        from server.feed.app import serve_feed

        click.echo(f"change feed on http://{host}:{settings.feed_port}/api/v1/events")
        serve_feed(settings, host=host, port=settings.feed_port)
        return
    bind = f"{host}:{settings.port}"
    gunicorn = [
        str(Path(sys.executable).with_name("gunicorn")),
        "server.app:create_app()",
        "--config",
        "python:server.gunicorn_conf",
        "--bind",
        bind,
        "--workers",
        str(workers or settings.workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "120",
        "--access-logfile",
        "-",
    ]
    # The workers redirect /api/v1/events to the feed: they must know its port. Given to the
    # children only: this process's own environment stays as it was (tests call serve in-process).
    env = os.environ | {"GRIDWATCH_EVENTS_PORT": str(settings.feed_port)}
    click.echo(f"serving on http://{bind}")
    if only == "api":
        os.execve(gunicorn[0], gunicorn, env)
    click.echo(f"change feed on http://{host}:{settings.feed_port}/api/v1/events")
    feed = [sys.executable, "-m", "server.cli", "serve", "--only", "feed", "--host", host]
    helpers = []
    if settings.demo_live:
        click.echo(
            f"demo live: the demo county keeps going at {settings.demo_live_speed:g}x (GRIDWATCH_DEMO_LIVE)"
        )
        helpers.append(
            [sys.executable, "-m", "server.cli", "demo", "live", "--speed", str(settings.demo_live_speed)]
        )
    sys.exit(supervise([feed, gunicorn], helpers=helpers, env=env))


def supervise(
    commands: list[list[str]], helpers: Sequence[list[str]] = (), env: dict[str, str] | None = None
) -> int:
    """Run the commands side by side until one ends or SIGTERM/SIGINT comes, then stop them all.
    Returns 0 after a signal, else the status of the one that ended (1 if it was 0). Helpers
    (the demo's live county) run beside them and are stopped with them, but their own end stops
    nothing."""
    servers = [subprocess.Popen(command, env=env) for command in commands]
    children = servers + [subprocess.Popen(command, env=env) for command in helpers]
    signalled: list[int] = []

    def terminate(signum: int) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def on_signal(signum: int, _frame) -> None:
        signalled.append(signum)
        terminate(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    while not signalled and all(child.poll() is None for child in servers):
        time.sleep(0.2)
    ended = next((child.returncode for child in servers if child.returncode is not None), None)
    terminate(signal.SIGTERM)
    for child in children:
        child.wait()
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    return 0 if signalled else (ended or 1)


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """What `make run` does, in one process: database up, migrations, the demo county the first
    time, then serve. One process instead of four saves seconds of start-up on every run."""
    ctx.invoke(db_up)
    ctx.invoke(db_migrate)
    ctx.invoke(demo_load, if_empty=True)
    ctx.invoke(serve)


main.add_command(db)
main.add_command(deploy)

if __name__ == "__main__":
    main()
