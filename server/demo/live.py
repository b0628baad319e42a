"""`gridwatch demo live`: the demo county goes on after its load. Residents and grid members
report at the county's daily rhythm (busy mornings, quiet nights, the season's categories), the
grid centre, departments and members move the cases through the workflow, and members walk their
grids, all through the service functions the API calls (`file_incident`, `perform`,
`record_patrol`, and `escalate_overdue` as its cron job would), so the live map, the queues and
the bulletin move while someone watches.

Time: the county's own clock starts at the wall clock's time and runs `speed` times as fast; it
decides what happens when (the hour's rhythm, the centre's day shift, working time, the delays of
pace.py, as in the generated history). What happens is stamped with the wall clock, as the API
stamps it, so at any speed no record lies in the future. At speed 60 an hour of the county passes
in a minute: its cases move at an hour's pace per minute, while their due times stay those the
services computed.

Cases that others move meanwhile (a person at the dashboard, the phone page) are noticed within
`SYNC_SECONDS` and taken from where they are; an action that meets a changed case is skipped.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import psycopg
from psycopg.rows import dict_row

from server.auth.demo import DEMO_ACCOUNTS
from server.auth.users import User, get_user
from server.demo.bulk import US_PER_SECOND
from server.demo.categories import CATEGORY_MODELS, HOUR_WEIGHT, STRAW_HOUR_WEIGHT, SURNAMES_FOR_CALLERS
from server.demo.events import EXTEND_NOTE, REGISTER_REASON, REJECT_REASON, REWORK_REASON, SELF_HANDLE_NOTE
from server.demo.incidents import CHANNEL_SHARE, CHANNELS, daily_rate
from server.demo.pace import CHINA_OFFSET, DAY, HOUR, MINUTE, PACE, Pace, lognormal, on_duty
from server.demo.settlements import KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON
from server.errors import GridwatchError
from server.incidents import service
from server.incidents.effects import ActionInput
from server.incidents.service import escalate_overdue
from server.patrols.service import PatrolInput, record_patrol
from server.worktime import WorkCalendar

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8))

ESCALATE_SECONDS = 60.0  # the escalation job, as cron would run it (wall clock)
SYNC_SECONDS = 20.0  # how often cases moved by others are picked up (wall clock)
MAX_SLEEP_SECONDS = 1.0  # a stop request is noticed within this
RETRY_SECONDS = 5.0  # after losing the database
RETURN_REASON = "不属于本部门职责，退回重新派遣"
DUPLICATE_NOTE = "重复上报，并入原事件"
RECENT_POINTS = 50_000  # report locations are drawn near these newest incidents'
FINISHED = ("closed", "rejected")


class Clock:
    """The wall clock. Tests give one that moves only when slept on."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * US_PER_SECOND)


@dataclass
class Case:
    """What the live county knows of an open case (and of a closed one still to be rated)."""

    id: int
    status: str
    category: str
    grid_id: int
    reporter_id: int | None
    channel: str
    department_id: int | None
    self_handled: bool
    reworked: bool
    extended: bool
    entered_us: int  # when it reached its status (county time)
    due_us: int | None
    late: bool  # closed after its due time (for the rating)
    updated_at: datetime  # as last seen in the database
    duplicate_of: int | None = None  # the open case it repeats, as the filing found it
    misdirected: bool = False  # dispatched to a department whose duties it is not
    version: int = 0  # a planned step is taken only if the case has not moved since


@dataclass
class LiveStats:
    actions: Counter = field(default_factory=Counter)  # filed, patrol, accept, ..., escalate
    skipped: int = 0  # actions that met a case someone else had moved
    errors: int = 0  # anything else that failed

    def line(self) -> str:
        done = sorted(self.actions.items(), key=lambda item: (-item[1], item[0]))
        moves = ", ".join(f"{name} {count}" for name, count in done) or "nothing"
        return f"{moves}; {self.skipped} skipped (moved by others meanwhile), {self.errors} errors"


class LiveCounty:
    """The demo county, kept going. `run()` until stopped or `duration` wall seconds pass."""

    def __init__(
        self,
        url: str,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        pace: Pace = PACE,
        clock: Clock | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.url = url
        self.speed = speed
        self.pace = pace
        self.clock = clock or Clock()
        self.rng = np.random.default_rng(seed)
        self.stats = LiveStats()
        self.conn: psycopg.Connection | None = None
        self.cases: dict[int, Case] = {}
        self.queue: list[tuple[int, int, str, int, int]] = []  # (county µs, seq, kind, case id, version)
        self.sequence = itertools.count()
        self.users: dict[int, User] = {}
        self.synced: datetime | None = None

    # -- the county's clock -------------------------------------------------------------------

    def county_us(self, wall: datetime) -> int:
        """County time (µs) at a wall time: the same at the start, then `speed` times as fast."""
        return self.origin_us + int((_us(wall) - self.origin_us) * self.speed)

    def county_now(self) -> datetime:
        """The county's clock, China time."""
        return datetime.fromtimestamp(self.county_us(self.clock.now()) / US_PER_SECOND, CHINA)

    def _push(self, at_us: int, kind: str, case_id: int = 0, version: int = 0) -> None:
        heapq.heappush(self.queue, (int(at_us), next(self.sequence), kind, case_id, version))

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        duration: float | None = None,
        report: Callable[[LiveCounty], None] | None = None,
        report_seconds: float = 60.0,
    ) -> LiveStats:
        """Keep the county going until `stop` is set or `duration` wall seconds have passed. Each
        step is a transaction of its own, as an API request is: stopping leaves nothing half done.
        When the database goes away, the county waits for it and starts again from what it holds."""
        started = self.clock.now()
        self.origin_us = _us(started)
        last_sync = last_report = started
        last_escalation = started - timedelta(seconds=ESCALATE_SECONDS)  # the job runs at once
        try:
            self._open()
            while not stop.is_set():
                wall = self.clock.now()
                elapsed = (wall - started).total_seconds()
                if duration is not None and elapsed >= duration:
                    break
                try:
                    if self.conn is None:
                        self._open()
                    now_us = self.county_us(wall)
                    if self.queue and self.queue[0][0] <= now_us:
                        self._step(heapq.heappop(self.queue))
                        continue
                    if (wall - last_escalation).total_seconds() >= ESCALATE_SECONDS:
                        last_escalation = wall
                        self._escalate()
                    if (wall - last_sync).total_seconds() >= SYNC_SECONDS:
                        last_sync = wall
                        self._sync()
                except psycopg.OperationalError as error:
                    log.warning("demo live: no database (%s); trying again in %.0f s", error, RETRY_SECONDS)
                    self.stats.errors += 1
                    self._close()
                    self.clock.sleep(RETRY_SECONDS, stop)
                    continue
                if report and (wall - last_report).total_seconds() >= report_seconds:
                    last_report = wall
                    report(self)
                wait = MAX_SLEEP_SECONDS
                if self.queue:
                    wait = min(wait, (self.queue[0][0] - now_us) / US_PER_SECOND / self.speed)
                if duration is not None:
                    wait = min(wait, duration - elapsed)
                self.clock.sleep(max(wait, 0.0), stop)
        finally:
            self._close()
        return self.stats

    def _open(self) -> None:
        """Connect and learn the county afresh: its people, rhythm and open cases."""
        self._close()
        self.conn = psycopg.connect(self.url, row_factory=dict_row)
        self.cases.clear()
        self.queue.clear()
        self.users.clear()
        self._load()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def _step(self, entry: tuple[int, int, str, int, int]) -> None:
        at_us, _, kind, case_id, version = entry
        try:
            if kind == "file":
                self._file()
                self._push(self._next_report(at_us), "file")
            elif kind == "patrol":
                self._patrol()
                self._push(self._next_patrol(at_us), "patrol")
            else:
                case = self.cases.get(case_id)
                if case is not None and case.version == version:
                    self._move(case, kind)
        except psycopg.OperationalError:
            raise  # the database is gone: the caller decides
        except Exception:
            self.conn.rollback()
            self.stats.errors += 1
            log.exception("demo live: %s failed", kind)

    # -- what the county knows ------------------------------------------------------------------

    def _load(self) -> None:
        conn = self.conn
        now = self.clock.now()
        self.categories = {
            row["code"]: row
            for row in conn.execute(
                """SELECT code, extract(epoch FROM time_limit)::bigint * 1000000 AS limit_us,
                          time_limit_unit = 'working' AS working, default_department_id,
                          default_priority
                     FROM categories WHERE active"""
            ).fetchall()
            if row["code"] in CATEGORY_MODELS
        }
        self.synced = None
        self.departments = {
            row["id"]: row["code"] for row in conn.execute("SELECT id, code FROM departments")
        }
        self.department_ids = {code: id_ for id_, code in self.departments.items()}
        grids = conn.execute(
            """SELECT g.id, g.code, g.member_id, t.id AS township_id, u.id AS operator_id
                 FROM grids g
                 LEFT JOIN grids t ON t.level = 'township' AND t.path @> g.path
                 LEFT JOIN users u ON u.username = 'op_' || t.code AND u.active
                WHERE g.level = 'grid'"""
        ).fetchall()
        fallback = conn.execute(
            """SELECT id FROM users WHERE role = 'operator' AND active
                ORDER BY username = 'op_county' DESC, id LIMIT 1"""
        ).fetchone()
        # Only where `demo load` put the demo county (its demo accounts are the mark): never
        # invent reports in a county's real data.
        demo = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM users WHERE username = ANY(%s)) AS loaded",
            [[username for username, _, _ in DEMO_ACCOUNTS]],
        ).fetchone()["loaded"]
        if not demo or not grids or fallback is None or not self.categories:
            raise GridwatchError("no demo county here: run `gridwatch demo load` first")
        self.grid_codes = {row["id"]: row["code"] for row in grids}
        self.members = {row["id"]: row["member_id"] for row in grids}
        self.operators = {row["id"]: row["operator_id"] or fallback["id"] for row in grids}
        self.townships = {row["id"]: row["township_id"] for row in grids}
        handlers: dict[int, list[int]] = {}
        for row in conn.execute(
            "SELECT id, department_id FROM users WHERE role = 'department' AND active ORDER BY id"
        ).fetchall():
            handlers.setdefault(row["department_id"], []).append(row["id"])
        self.handlers = handlers
        self.calendar = WorkCalendar.read(
            conn, first=now - timedelta(days=400), last=now + timedelta(days=1500)
        )
        self._load_rhythm(now)
        self._load_patrollers(now)
        self._load_speeds(now)
        self._load_cases(now)
        conn.commit()
        now_us = self.county_us(now)
        self._push(self._next_report(now_us), "file")
        if self.patrollers:
            self._push(self._next_patrol(now_us), "patrol")

    def _load_rhythm(self, now: datetime) -> None:
        """Report rates per category and hour, scaled to the four weeks before the newest report
        (a county loaded days ago keeps its pace), and where reports come from: near the newest
        incidents of each category."""
        row = self.conn.execute(
            """WITH last AS (SELECT least(max(reported_at), %s) AS at FROM incidents)
               SELECT last.at, (SELECT count(*) FROM incidents, last
                                 WHERE reported_at > last.at - interval '28 days') AS n
                 FROM last""",
            [now],
        ).fetchone()
        recent, last = row["n"], row["at"] or now
        self.codes = sorted(self.categories)
        days = (_us(last) + CHINA_OFFSET) // DAY - np.arange(0, 28)
        expected = sum(
            CATEGORY_MODELS[code].share * daily_rate(CATEGORY_MODELS[code], days).sum() for code in self.codes
        )
        self.scale = recent / expected if expected else 0.0
        self.hour_shares = {
            code: (STRAW_HOUR_WEIGHT if code == "straw_burning" else HOUR_WEIGHT)
            / (STRAW_HOUR_WEIGHT if code == "straw_burning" else HOUR_WEIGHT).sum()
            for code in self.codes
        }
        # An upper bound of the rate (per µs), for thinning.
        self.peak_rate = (
            self.scale
            * sum(
                CATEGORY_MODELS[c].share * max(CATEGORY_MODELS[c].months) * self.hour_shares[c].max()
                for c in self.codes
            )
            * 24
            / DAY
        )
        rows = self.conn.execute(
            """SELECT category_code, ST_X(geom) AS lon, ST_Y(geom) AS lat
                 FROM incidents ORDER BY id DESC LIMIT %s""",
            [RECENT_POINTS],
        ).fetchall()
        self.points = {code: np.array([(r["lon"], r["lat"]) for r in rows if r["category_code"] == code])
                       for code in self.codes}  # fmt: skip

    def _load_speeds(self, now: datetime) -> None:
        """How fast each township's centre takes in cases and each department handles them,
        relative to the county, as the last months show (median per unit of each case's time
        over its category's median): a slow department stays slow."""
        rows = self.conn.execute(
            """WITH recent AS (
                   SELECT i.category_code, i.department_id, t.id AS township_id,
                          extract(epoch FROM i.resolved_at - i.dispatched_at) AS handling,
                          extract(epoch FROM i.dispatched_at - i.reported_at) AS intake
                     FROM incidents i JOIN grids g ON g.id = i.grid_id
                     JOIN grids t ON t.level = 'township' AND t.path @> g.path
                    WHERE i.resolved_at > least(%s, (SELECT max(resolved_at) FROM incidents))
                                          - interval '120 days'
                      AND i.dispatched_at < i.resolved_at AND i.registered_at IS NULL AND NOT i.self_handled),
               typical AS (
                   SELECT category_code,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY handling) AS handling,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY intake) AS intake
                     FROM recent GROUP BY category_code)
               SELECT 'department' AS kind, r.department_id AS unit, percentile_cont(0.5)
                      WITHIN GROUP (ORDER BY r.handling / nullif(t.handling, 0)) AS factor
                 FROM recent r JOIN typical t USING (category_code) GROUP BY r.department_id
               UNION ALL
               SELECT 'township', r.township_id,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY r.intake / nullif(t.intake, 0))
                 FROM recent r JOIN typical t USING (category_code) GROUP BY r.township_id""",
            [now],
        ).fetchall()
        self.speeds = {(row["kind"], row["unit"]): float(row["factor"] or 1.0) for row in rows}

    def _speed(self, case: Case) -> float:
        """The case's township centre's pace: 1 is the county's, 2 twice as slow."""
        return self.speeds.get(("township", self.townships.get(case.grid_id)), 1.0)

    def _slowness(self, case: Case) -> float:
        """The pace of the department handling the case, in its township."""
        return self._speed(case) * self.speeds.get(("department", case.department_id), 1.0)

    def _load_patrollers(self, now: datetime) -> None:
        """Members who walked their grid in the weeks before the last patrol, at the rate they
        walked it; members who stopped stay stopped, and grids without a member stay unwalked
        (the coverage layer's story)."""
        rows = self.conn.execute(
            """WITH last AS (SELECT least(max(started_at), %s) AS at FROM patrols)
               SELECT p.user_id, g.code, count(*)::float / 8 AS per_week
                 FROM last, patrols p JOIN grids g ON g.id = p.grid_id AND g.member_id = p.user_id
                WHERE p.started_at > last.at - interval '56 days'
                GROUP BY p.user_id, g.code
               HAVING max(p.started_at) > min(last.at) - interval '21 days'
                ORDER BY p.user_id, g.code""",
            [now],
        ).fetchall()
        self.patrollers = [(row["user_id"], row["code"]) for row in rows]
        weekly = np.array([row["per_week"] for row in rows])
        self.patrol_weights = weekly / weekly.sum() if len(weekly) else weekly
        self.patrols_per_day = float(weekly.sum()) / 7

    def _load_cases(self, now: datetime) -> None:
        rows = self.conn.execute(
            """SELECT i.id, i.status, i.category_code, i.grid_id, i.reporter_id, i.channel, i.department_id,
                      i.self_handled, i.rework_count, i.extension_count, i.updated_at, i.due_at,
                      i.closed_at, i.rated_at
                 FROM incidents i
                WHERE i.status NOT IN ('closed', 'rejected')
                   OR (i.status = 'closed' AND i.rated_at IS NULL AND i.closed_at >= %s)
                ORDER BY i.id""",
            [now - timedelta(days=2)],
        ).fetchall()
        now_us = self.county_us(now)
        for row in rows:
            self._take(row, now_us, catching_up=True)

    def _take(self, row: dict, now_us: int, *, catching_up: bool) -> None:
        """Know a case as the database has it, and plan its next step."""
        if row["category_code"] not in self.categories:
            return
        due = row["due_at"]
        case = Case(
            id=row["id"],
            status=row["status"],
            category=row["category_code"],
            grid_id=row["grid_id"],
            reporter_id=row["reporter_id"],
            channel=row["channel"],
            department_id=row["department_id"],
            self_handled=row["self_handled"],
            reworked=row["rework_count"] > 0,
            extended=row["extension_count"] > 0,
            entered_us=min(_us(row["updated_at"]), now_us),
            due_us=_us(due) if due else None,
            late=bool(row["closed_at"] and due and row["closed_at"] > due),
            updated_at=row["updated_at"],
        )
        old = self.cases.get(case.id)
        case.version = old.version + 1 if old else 0
        self.cases[case.id] = case
        self._plan(case, now_us, catching_up=catching_up)

    def _sync(self) -> None:
        """Pick up cases filed or moved by others since the last look."""
        since = self.synced or self.clock.now() - timedelta(seconds=SYNC_SECONDS)
        self.synced = self.clock.now()
        rows = self.conn.execute(
            """SELECT i.id, i.status, i.category_code, i.grid_id, i.reporter_id, i.channel, i.department_id,
                      i.self_handled, i.rework_count, i.extension_count, i.updated_at, i.due_at,
                      i.closed_at, i.rated_at
                 FROM incidents i WHERE i.updated_at >= %s ORDER BY i.id""",
            [since - timedelta(seconds=5)],
        ).fetchall()
        self.conn.commit()
        now_us = self.county_us(self.synced)
        for row in rows:
            known = self.cases.get(row["id"])
            if known is not None and known.status == row["status"]:
                known.updated_at = row["updated_at"]  # escalated, extended, commented: same plan
                continue
            if known is None and row["status"] in FINISHED:
                continue
            if row["status"] == "closed" and row["rated_at"] is not None:
                self.cases.pop(row["id"], None)
                continue
            self._take(row, now_us, catching_up=False)

    # -- planning: the next step of a case and when ----------------------------------------------

    def _lognormal(self, median_us: float, sigma: float) -> int:
        return int(lognormal(self.rng, median_us, sigma))

    def _centre(self, case: Case, at_us: int) -> int:
        """The grid centre takes its steps in its day shift, except for emergencies."""
        if self._round_the_clock(case):
            return at_us
        return int(on_duty(at_us, self.rng.random(), self.pace))

    def _round_the_clock(self, case: Case) -> bool:
        category = self.categories[case.category]
        return not category["working"] and category["limit_us"] <= self.pace.round_the_clock

    def _department_time(self, case: Case, start_us: int, amount_us: int) -> int:
        if self.categories[case.category]["working"]:
            return int(self.calendar.add(start_us, amount_us))
        return start_us + amount_us

    def _of_limit(self, case: Case, step: tuple, scale: float = 1.0) -> int:
        limit = self.categories[case.category]["limit_us"]
        return self._lognormal(min(step[0], step[1] * limit) * scale, step[2])

    def _plan(self, case: Case, now_us: int, *, catching_up: bool = False) -> None:
        """Decide the case's next step and queue it. For a case met at the start, the delay is
        counted from when it reached its status; one already due is spread over the next while."""
        plan = self._next_step(case)
        if plan is None:
            self.cases.pop(case.id, None)
            return
        kind, at_us = plan
        if at_us <= now_us:
            at_us = (
                now_us + int(self.rng.random() * max(at_us - case.entered_us, MINUTE))
                if catching_up
                else now_us
            )
        self._push(at_us, kind, case.id, case.version)

    def _next_step(self, case: Case) -> tuple[str, int] | None:
        pace, rng, start = self.pace, self.rng, case.entered_us
        category = self.categories[case.category]
        limit = category["limit_us"]
        model = CATEGORY_MODELS[case.category]
        member = self.members.get(case.grid_id)
        speed = self._speed(case)
        if case.status == "reported":
            if (
                case.channel == "app"
                and member
                and case.reporter_id == member
                and rng.random() < model.self_handled * pace.self_handled
            ):
                return "self_handle", start + self._lognormal(
                    pace.self_handle[0] * speed, pace.self_handle[1]
                )
            if case.duplicate_of is not None and rng.random() < pace.link_duplicate:
                kind = "link_duplicate"
            elif rng.random() < (pace.reject_app if case.channel == "app" else pace.reject_other):
                kind = "reject"
            else:
                kind = "accept"
            return kind, self._centre(case, start + self._lognormal(pace.accept[0] * speed, pace.accept[1]))
        if case.status == "accepted":
            return "dispatch", self._centre(
                case, start + self._lognormal(pace.dispatch[0] * speed, pace.dispatch[1])
            )
        if case.status == "dispatched":
            if case.misdirected:
                return "return", self._department_time(case, start, self._lognormal(*pace.return_after))
            return "start", self._department_time(
                case, start, self._of_limit(case, pace.start, self._slowness(case))
            )
        if case.status == "in_progress":
            if not case.reworked and rng.random() < pace.register:
                room = max((case.due_us or start) - start, HOUR)
                return "register", self._centre(case, start + int(room * rng.uniform(0.2, 0.9)))
            share = pace.urgent_work_share if self._round_the_clock(case) else pace.work_share[0]
            work = self._lognormal(
                share * limit * (speed if case.self_handled else self._slowness(case)), pace.work_share[1]
            )
            if case.reworked:
                work //= 2
            done = start + work if case.self_handled else self._department_time(case, start, work)
            due = case.due_us
            if due is not None and done > due:
                if not case.extended and rng.random() < pace.extend:
                    return "extend", max(start, due - limit // 4)
                push = self._lognormal(pace.supervised[0] * limit, pace.supervised[1])
                done = min(done, self._department_time(case, max(due, start), push))
            return "resolve", done
        if case.status == "registered":
            return "resume", self._centre(case, start + self._lognormal(*pace.registered_for))
        if case.status == "resolved":
            if not case.reworked and rng.random() < pace.rework:
                return "rework", start + self._lognormal(*pace.rework_after)
            return "verify", self._centre(case, start + self._of_limit(case, pace.verify))
        if case.status == "verified":
            return "close", self._centre(case, start + self._of_limit(case, pace.close))
        if case.status == "closed" and rng.random() < pace.rated:
            return "rate", start + self._lognormal(*pace.rate_after)
        return None

    # -- acting: through the services, as the API does -------------------------------------------

    def user(self, user_id: int) -> User:
        if user_id not in self.users:
            found = get_user(self.conn, user_id=user_id)
            if found is None:
                raise GridwatchError(f"user {user_id} is gone")
            self.users[user_id] = found
        return self.users[user_id]

    def _handler(self, department_id: int | None) -> int | None:
        handlers = self.handlers.get(department_id)
        return int(self.rng.choice(handlers)) if handlers else None

    def _actor(self, case: Case, action: str) -> int | None:
        operator = self.operators.get(case.grid_id)
        member = self.members.get(case.grid_id)
        if action in ("start", "return") or (action == "resolve" and not case.self_handled):
            return self._handler(case.department_id)
        if action in ("self_handle", "resolve"):
            return member
        if action in ("verify", "rework") and member and not case.self_handled:
            return member
        return operator

    def _given(self, case: Case, action: str) -> ActionInput:
        rng = self.rng
        if action == "dispatch":
            default = self.categories[case.category]["default_department_id"]
            if rng.random() < self.pace.returned:
                case.misdirected = True
                others = [d for d in sorted(self.handlers) if d != default]
                return (
                    ActionInput(department=self.departments[int(rng.choice(others))])
                    if others
                    else ActionInput()
                )
            if rng.random() < self.pace.other_department:
                return ActionInput(department=self.departments[int(rng.choice(sorted(self.handlers)))])
            return ActionInput()
        if action == "rate":
            weights = [0.08, 0.12, 0.25, 0.30, 0.25] if case.late else [0.02, 0.04, 0.12, 0.32, 0.50]
            return ActionInput(rating=int(rng.choice([1, 2, 3, 4, 5], p=weights)))
        notes = {
            "reject": REJECT_REASON,
            "return": RETURN_REASON,
            "rework": REWORK_REASON,
            "extend": EXTEND_NOTE,
            "register": REGISTER_REASON,
            "self_handle": SELF_HANDLE_NOTE,
            "link_duplicate": DUPLICATE_NOTE,
        }
        return ActionInput(
            note=notes.get(action), duplicate_of=case.duplicate_of if action == "link_duplicate" else None
        )

    def _move(self, case: Case, action: str) -> None:
        if action == "link_duplicate" and not self._original(case.duplicate_of):
            action = "accept"  # the case it repeated was rejected meanwhile: this one stands
        actor = self._actor(case, action)
        if actor is None:  # no one to take the step (a department without handlers): let it be
            self.cases.pop(case.id, None)
            return
        given = self._given(case, action)
        now = self.clock.now()
        try:
            incident = service.perform(
                self.conn, user=self.user(actor), incident_id=case.id, action=action, now=now, given=given
            )
            self.conn.commit()
        except GridwatchError:
            # Someone else moved it first (or it is gone): take it from where it is now.
            self.conn.rollback()
            self.stats.skipped += 1
            self._refresh(case.id)
            return
        self.stats.actions[action] += 1
        self._moved(case, incident, action, self.county_us(now))

    def _original(self, incident_id: int | None) -> bool:
        """Whether a case can be the original of a duplicate: not rejected, not one itself."""
        row = self.conn.execute(
            "SELECT status, duplicate_of FROM incidents WHERE id = %s", [incident_id]
        ).fetchone()
        return row is not None and row["status"] != "rejected" and row["duplicate_of"] is None

    def _moved(self, case: Case, incident: dict, action: str, now_us: int) -> None:
        status = incident["status"]
        if status in FINISHED and action != "close":
            self.cases.pop(case.id, None)
            return
        if status != case.status:
            case.entered_us = now_us
        case.status = status
        case.department_id = self.department_ids.get(incident["department"])
        case.self_handled = incident["self_handled"]
        case.reworked = incident["rework_count"] > 0
        case.extended = incident["extension_count"] > 0
        case.due_us = _us(incident["due_at"]) if incident["due_at"] else None
        case.late = bool(
            incident["closed_at"] and incident["due_at"] and incident["closed_at"] > incident["due_at"]
        )
        case.updated_at = incident["updated_at"]
        if action == "return":
            case.misdirected = False
        case.version += 1
        if action == "rate":
            self.cases.pop(case.id, None)
            return
        self._plan(case, now_us)

    def _refresh(self, incident_id: int) -> None:
        row = self.conn.execute(
            """SELECT i.id, i.status, i.category_code, i.grid_id, i.reporter_id, i.channel, i.department_id,
                      i.self_handled, i.rework_count, i.extension_count, i.updated_at, i.due_at,
                      i.closed_at, i.rated_at
                 FROM incidents i WHERE i.id = %s""",
            [incident_id],
        ).fetchone()
        self.conn.commit()
        if row is None or (
            row["status"] in FINISHED and not (row["status"] == "closed" and row["rated_at"] is None)
        ):
            self.cases.pop(incident_id, None)
            return
        self._take(row, self.county_us(self.clock.now()), catching_up=False)

    def _escalate(self) -> None:
        try:
            moved = escalate_overdue(self.conn, now=self.clock.now())
            self.conn.commit()
        except GridwatchError:
            self.conn.rollback()
            self.stats.errors += 1
            return
        if moved:
            self.stats.actions["escalate"] += moved

    # -- reports --------------------------------------------------------------------------------

    def _rates(self, at_us: int) -> np.ndarray:
        """Reports per µs of each category at a county time."""
        local = at_us + CHINA_OFFSET
        day = np.array([local // DAY])
        hour = int(local % DAY // HOUR)
        return np.array(
            [
                self.scale * CATEGORY_MODELS[code].share * daily_rate(CATEGORY_MODELS[code], day)[0]
                * self.hour_shares[code][hour] * 24 / DAY
                for code in self.codes
            ]
        )  # fmt: skip

    def _next_report(self, after_us: int) -> int:
        """The next report time of the county's rhythm (a Poisson process, by thinning)."""
        if self.peak_rate <= 0:
            return after_us + 365 * DAY  # a county with no reports lately stays quiet
        at = after_us
        while True:
            at += int(self.rng.exponential(1 / self.peak_rate)) + 1
            if self.rng.random() * self.peak_rate <= self._rates(at).sum():
                return at

    def _file(self) -> None:
        rates = self._rates(self.county_us(self.clock.now()))
        code = self.codes[int(self.rng.choice(len(self.codes), p=rates / rates.sum()))]
        model = CATEGORY_MODELS[code]
        repeat = self._repeated_case(code) if self.rng.random() < self.pace.repeat_report else None
        if repeat is not None:
            lon, lat = (
                self.conn.execute(
                    "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents WHERE id = %s", [repeat]
                )
                .fetchone()
                .values()
            )
            lon, lat = self._moved_point(lon, lat, 15)
        elif len(self.points[code]):
            lon, lat = self.points[code][self.rng.integers(len(self.points[code]))]
            lon, lat = self._moved_point(lon, lat, model.spread_m / 2)
        else:
            return
        grid = self.conn.execute(
            "SELECT grid_at(ST_SetSRID(ST_MakePoint(%s, %s), 4326)) AS id", [lon, lat]
        ).fetchone()["id"]
        if grid is None:
            self.conn.rollback()
            return
        channel = CHANNELS[int(self.rng.choice(len(CHANNELS), p=CHANNEL_SHARE))]
        member = self.members.get(grid)
        if repeat is not None or member is None:
            channel = "hotline_12345" if channel == "app" else channel
        by_app = channel == "app"
        filer = member if by_app else self.operators[grid]
        filing = service.Filing(
            lon=float(lon),
            lat=float(lat),
            category=code,
            description=str(self.rng.choice(model.descriptions)),
            accuracy_m=round(float(self.rng.lognormal(2.1 if by_app else 4.4, 0.6)), 1),
            channel=channel,
            reporter_name=None if by_app else self._caller(),
        )
        now = self.clock.now()
        result = service.file_incident(self.conn, user=self.user(filer), filing=filing, now=now)
        self.conn.commit()
        self.stats.actions["filed"] += 1
        incident = result.incident
        case = Case(
            id=incident["id"],
            status=incident["status"],
            category=code,
            grid_id=grid,
            reporter_id=incident["reporter_id"],
            channel=incident["channel"],
            department_id=None,
            self_handled=False,
            reworked=False,
            extended=False,
            entered_us=self.county_us(now),
            due_us=None,
            late=False,
            updated_at=incident["updated_at"],
            duplicate_of=next((d["id"] for d in result.possible_duplicates), None),
        )
        self.cases[case.id] = case
        self._plan(case, case.entered_us)

    def _repeated_case(self, code: str) -> int | None:
        """An open case of the category reported in the last day, which a resident reports again."""
        now_us = self.county_us(self.clock.now())
        candidates = [
            case.id
            for case in self.cases.values()
            if case.category == code
            and case.status in ("reported", "accepted", "dispatched", "in_progress")
            and case.duplicate_of is None
            and now_us - case.entered_us < DAY
        ]
        return int(self.rng.choice(candidates)) if candidates else None

    def _moved_point(self, lon: float, lat: float, metres: float) -> tuple[float, float]:
        dx, dy = self.rng.normal(0, metres / 1000, 2)
        return lon + dx / KM_PER_DEGREE_LON, lat + dy / KM_PER_DEGREE_LAT

    def _caller(self) -> str:
        return str(self.rng.choice(SURNAMES_FOR_CALLERS)) + str(self.rng.choice(["先生", "女士"]))

    # -- patrols --------------------------------------------------------------------------------

    def _next_patrol(self, after_us: int) -> int:
        """The next patrol's end: members walk between 08:00 and 18:00, at their usual rate."""
        if self.patrols_per_day <= 0:
            return after_us + 365 * DAY
        gap = int(self.rng.exponential(10 * HOUR / self.patrols_per_day)) + 1
        at = after_us
        while True:
            local = (at + CHINA_OFFSET) % DAY
            if local < 8 * HOUR:
                at += 8 * HOUR - local
                continue
            left = 18 * HOUR - local
            if left <= 0:
                at += DAY - local + 8 * HOUR
                continue
            if gap <= left:
                return at + gap
            gap -= left
            at += left

    def _patrol(self) -> None:
        user_id, grid = self.patrollers[int(self.rng.choice(len(self.patrollers), p=self.patrol_weights))]
        centre = self.conn.execute(
            """SELECT ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
                 FROM grids g, ST_Dump(ST_GeneratePoints(g.geom, 1, %s)) AS p WHERE g.code = %s""",
            [int(self.rng.integers(1, 2**31 - 1)), grid],
        ).fetchone()
        self.conn.rollback()
        now = self.clock.now()
        minutes = int(self.rng.integers(10, 90))
        if self.rng.random() < 0.4:  # a check-in
            track = {"type": "Point", "coordinates": [centre["lon"], centre["lat"]]}
        else:  # a short walk around the grid
            steps = self.rng.normal(0, 0.05, (int(self.rng.integers(3, 7)), 2)) / (
                KM_PER_DEGREE_LON,
                KM_PER_DEGREE_LAT,
            )
            path = np.cumsum(np.vstack([[0, 0], steps]), axis=0) + (centre["lon"], centre["lat"])
            track = {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in path]}
        patrol = PatrolInput.model_validate(
            {"grid": grid, "started_at": now - timedelta(minutes=minutes), "ended_at": now, "track": track}
        )
        try:
            record_patrol(self.conn, user=self.user(user_id), patrol=patrol, now=now, idempotency_key=None)
        except GridwatchError:
            # A walk that strayed too far from the grid: a check-in where it began instead.
            self.conn.rollback()
            if track["type"] == "Point":
                raise
            self.stats.actions["patrol check-in instead of a track"] += 1
            checked_in = {"type": "Point", "coordinates": track["coordinates"][0]}
            patrol = PatrolInput.model_validate(patrol.model_dump() | {"track": checked_in})
            record_patrol(self.conn, user=self.user(user_id), patrol=patrol, now=now, idempotency_key=None)
        self.conn.commit()
        self.stats.actions["patrol"] += 1
