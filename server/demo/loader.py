"""`gridwatch demo load`: replace all data with the generated demo county, in one transaction.

Python generates (numpy, shapely); PostgreSQL loads: binary COPY into temporary staging tables,
then set-based INSERT ... SELECT into the real tables (sql/*.sql beside this file), so the
triggers and constraints of the schema apply to demo data as to any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources

import numpy as np
import psycopg
import shapely
from psycopg import sql
from tqdm import tqdm

from server.auth.demo import create_demo_accounts
from server.demo.boundary import load_county
from server.demo.bulk import NEVER, US_PER_SECOND, copy_arrays, copy_batches, create_stage
from server.demo.categories import Category, caller_names, description_texts
from server.demo.events import event_batches
from server.demo.incidents import (
    CHANNELS,
    DAYS,
    HANDLING_LEVELS,
    PRIORITIES,
    STATUSES,
    generate_incidents,
    stage_columns,
)
from server.demo.partition import Partition, build_partition
from server.demo.patrols import generate_patrols
from server.demo.people import People, build_people
from server.demo.settlements import generate_settlements
from server.errors import Conflict
from server.worktime import WorkCalendar

CHINA = timezone(timedelta(hours=8))
# What a load replaces, after the incidents. CASCADE also empties what hangs off these (tokens).
DATA_TABLES = ["patrols", "grids", "users"]
BULK_TABLES = ["incidents", "incident_events", "patrols"]


@dataclass
class DemoSummary:
    seed: int
    until: datetime
    counts: dict[str, int] = field(default_factory=dict)
    backlog: dict[str, int] = field(default_factory=dict)  # open cases by status at `until`
    overdue: int = 0  # open cases past their due time at `until`
    accounts: list[dict] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [
            f"demo county 洪雅县 loaded in {self.seconds:.1f} s (seed {self.seed}, "
            f"two years up to {self.until:%Y-%m-%d %H:%M} China time):",
            *(f"  {name:<22}{count:>10,}" for name, count in self.counts.items()),
            f"open backlog {sum(self.backlog.values()):,} ("
            + ", ".join(f"{status} {count:,}" for status, count in self.backlog.items())
            + f"), {self.overdue:,} of them overdue ({self.overdue_share:.1%})",
            "time per step: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in self.step_seconds.items()),
        ]
        if self.accounts:
            lines.append("demo accounts (password / API token), shown once:")
            lines += [f"  {a['username']:<16} {a['password']}  {a['token']}" for a in self.accounts]
        return "\n".join(lines)

    @property
    def overdue_share(self) -> float:
        return self.overdue / max(sum(self.backlog.values()), 1)


def _sql(name: str) -> str:
    return resources.files("server.demo").joinpath("sql", name).read_text(encoding="utf-8")


def default_until() -> datetime:
    """Now, to the second, China time: the demo's two years end at the moment of loading."""
    return datetime.now(CHINA).replace(microsecond=0)


def _reference(conn: psycopg.Connection) -> tuple[dict[int, str], list[Category]]:
    departments = dict(conn.execute("SELECT id, code FROM departments ORDER BY id").fetchall())
    categories = [
        Category(code, int(limit.total_seconds() * US_PER_SECOND), department_id, priority, unit == "working")
        for code, limit, department_id, priority, unit in conn.execute(
            """SELECT code, time_limit, default_department_id, default_priority, time_limit_unit
                 FROM categories WHERE active ORDER BY code"""
        )
    ]
    # The demo dispatches each category's cases to its default department: a category an admin
    # saved without one cannot be generated (before, numpy failed halfway with a TypeError).
    missing = [category.code for category in categories if category.department_id is None]
    if missing:
        raise Conflict(
            "the demo needs a default department for every active category; "
            f"set one for {', '.join(missing)} (PATCH /api/v1/admin/categories/<code>) or deactivate it",
            field="categories",
            categories=missing,
        )
    return departments, categories


def _load_people_and_grids(conn: psycopg.Connection, partition: Partition, people: People) -> None:
    with conn.cursor().copy(
        "COPY users (id, username, display_name, role, department_id, phone) FROM STDIN"
    ) as copy:
        for row in people.rows:
            copy.write_row(row)
    # Level by level: the path trigger reads each parent's path.
    wkb = shapely.to_wkb(
        shapely.set_srid([area.geom for area in partition.areas], 4326), hex=True, include_srid=True
    )
    for level in ("county", "township", "village", "grid"):
        with conn.cursor().copy(
            """COPY grids (id, code, level, parent_id, name_zh, name_en, households, population,
                           member_id, geom) FROM STDIN"""
        ) as copy:
            for index in partition.indices(level):
                area = partition.areas[index]
                member = int(people.grid_member[index]) or None
                parent = None if area.parent is None else area.parent + 1
                copy.write_row(
                    (int(index) + 1, area.code, level, parent, area.name_zh, area.name_en, area.households,
                     area.population, member, wkb[index])
                )  # fmt: skip


def _empty(conn: psycopg.Connection, referencing: list[tuple[str, str]]) -> None:
    """Remove all data. Incidents are deleted, not truncated, so that the triggers of derived
    data (the tile rollups) see them go; the `referencing` tables (schema, name) are truncated
    first (a reload is a reset, not history). The rest is truncated."""
    if referencing:
        tables = sql.SQL(", ").join(sql.Identifier(schema, name) for schema, name in referencing)
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(tables))
    conn.execute("DELETE FROM incidents")
    everything = sql.SQL(", ").join(map(sql.Identifier, DATA_TABLES))
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(everything))


def _defer_indexes(conn: psycopg.Connection, tables: list[str]) -> list[tuple]:
    """Drop the keys, indexes and foreign keys of `tables` and the foreign keys pointing at them
    (sql/bulk_defer.sql); returns what `_restore_indexes` needs to put them back, in the same
    transaction."""
    deferred = conn.execute(_sql("bulk_defer.sql"), {"tables": tables}).fetchall()
    for kind, schema, name, table, _ in reversed(deferred):
        if kind == "index":
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
        else:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(schema, table), sql.Identifier(name)
                )
            )
    return deferred


def _restore_indexes(conn: psycopg.Connection, deferred: list[tuple]) -> None:
    for kind, schema, name, table, definition in deferred:
        # `definition` is the catalog's own DDL for the object, as it was.
        if kind == "index":
            conn.execute(sql.SQL(definition))
        else:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(schema, table), sql.Identifier(name), sql.SQL(definition)
                )
            )


def _restart_sequences(conn: psycopg.Connection) -> None:
    """Ids were given explicitly; the next id a sequence hands out follows the largest."""
    statement = sql.SQL(
        "SELECT setval(pg_get_serial_sequence({name}, 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
    )
    for table in ("users", "grids", "incidents", "incident_events", "patrols"):
        conn.execute(statement.format(name=sql.Literal(table), table=sql.Identifier(table)))


class _Steps:
    """Times each step, for the summary, and moves the progress bar."""

    NAMES = ("generate county", "generate incidents", "replace grids and people", "stage incidents",
             "insert incidents", "copy events", "copy patrols", "indexes and keys")  # fmt: skip

    def __init__(self, progress: bool) -> None:
        self.bar = tqdm(
            total=len(self.NAMES), disable=not progress, unit="step", bar_format="{l_bar}{bar}| {n}/{total}"
        )
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self.since = time.perf_counter()

    def next(self, name: str | None) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.seconds[self.current] = now - self.since
            self.bar.update()
        self.current, self.since = name, now
        if name is None:
            self.bar.close()
        else:
            self.bar.set_description(name)


def load_demo(
    url: str, *, seed: int, incident_count: int, progress: bool = False, until: datetime | None = None
) -> DemoSummary:
    """Replace everything with the demo county, in one transaction. Same seed, count and `until`,
    same data; `until` defaults to now: the history ends at the moment of loading."""
    started = time.perf_counter()
    until = until or default_until()
    until_us = int(until.astimezone(UTC).timestamp()) * US_PER_SECOND
    summary = DemoSummary(seed=seed, until=until.astimezone(CHINA))
    rng = np.random.default_rng(seed)
    steps = _Steps(progress)

    with psycopg.connect(url) as conn:
        # Room for the hash joins and aggregates over millions of rows (foreign key validation,
        # the rollup triggers) to stay in memory, for this transaction only.
        conn.execute("SET LOCAL work_mem = '256MB'")
        departments, categories = _reference(conn)
        # Two years back and, for due times and cases resumed from the register, years ahead.
        calendar = WorkCalendar.read(
            conn, first=until - timedelta(days=DAYS + 2), last=until + timedelta(days=4 * 365)
        )
        steps.next("generate county")
        county, seat = load_county()
        settlements = generate_settlements(county, seat, rng)
        partition = build_partition(county, settlements, rng)
        people = build_people(partition, departments, rng)
        steps.next("generate incidents")
        homes = settlements.households
        incidents = generate_incidents(
            partition=partition,
            households=homes,
            people=people,
            categories=categories,
            count=incident_count,
            until_us=until_us,
            first_id=1,
            rng=rng,
            calendar=calendar,
        )
        patrols = generate_patrols(
            partition=partition, households=homes, people=people, until_us=until_us, rng=rng
        )

        steps.next("replace grids and people")
        # Indexes and foreign keys go first: deleting incidents would otherwise check, row by
        # row, the unindexed self-reference `duplicate_of`.
        referencing = conn.execute(_sql("referencing_incidents.sql")).fetchall()
        deferred = _defer_indexes(conn, BULK_TABLES)
        _empty(conn, referencing)
        _load_people_and_grids(conn, partition, people)
        steps.next("stage incidents")
        staged = stage_columns(incidents)
        create_stage(conn, "demo_incident_stage", {name: kind for name, (kind, _) in staged.items()})
        copy_arrays(conn, "demo_incident_stage", staged)
        steps.next("insert incidents")
        codes = {
            "categories": [c.code for c in categories],
            "descriptions": description_texts(categories),
            "channels": CHANNELS,
            "callers": caller_names(),
            "statuses": STATUSES,
            "priorities": PRIORITIES,
            "handling_levels": HANDLING_LEVELS,
        }
        conn.execute(_sql("incidents.sql"), codes)
        steps.next("copy events")
        events = copy_batches(conn, "incident_events", event_batches(incidents, departments))
        steps.next("copy patrols")
        patrol_count = copy_arrays(conn, "patrols", patrols)
        steps.next("indexes and keys")
        _restore_indexes(conn, deferred)
        _restart_sequences(conn)
        summary.accounts = create_demo_accounts(conn)
    grids = partition.indices("grid")
    summary.counts = {
        "townships": len(partition.indices("township")),
        "villages": len(partition.indices("village")),
        "grids": len(grids),
        "grids without member": int((people.grid_member[grids] == 0).sum()),
        "users": len(people.rows) + len(summary.accounts),
        "incidents": incident_count,
        "events": events,
        "patrols": patrol_count,
    }
    steps.next(None)
    status = incidents["status"][1]
    open_cases = ~np.isin(status, [STATUSES.index("closed"), STATUSES.index("rejected")])
    summary.backlog = {
        name: int((status == index).sum())
        for index, name in enumerate(STATUSES)
        if name not in ("closed", "rejected")
    }
    due = incidents["due_at"][1]
    summary.overdue = int((open_cases & (due != NEVER) & (due < until_us)).sum())
    summary.step_seconds = steps.seconds
    summary.seconds = time.perf_counter() - started
    return summary
