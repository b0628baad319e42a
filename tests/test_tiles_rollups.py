"""The rollups behind zoomed-out tiles stay equal to a recount from scratch whatever writes the
incidents (inserts, workflow updates, deletes, bulk loads), and the grid numbers they give."""

from __future__ import annotations

import pytest
from tiles_support import NEAR, bearer, decode, tile_path, token_for

from server.tiles.changes import fold_pending

ROLLUPS = (
    "incident_cells",
    "incident_cell_totals",
    "incident_cells_detail",
    "density_cells",
    "density_cells_detail",
    "grid_stats",
    "grid_close_times",
    "grid_open_due",
    "grid_open_due_hour",
    "grid_open_due_month",
)


def rollup_rows(conn, table: str) -> set[tuple]:
    # Rows whose counts all went back to zero carry no information.
    rows = conn.execute(f"SELECT * FROM tiles.{table}").fetchall()  # noqa: S608 (fixed names)
    return {
        tuple(row.values())
        for row in rows
        if any(
            v != 0
            for k, v in row.items()
            if k.startswith("n")
            or k in ("incidents", "open_count", "closed_count", "closed_due", "closed_on_time")
        )
    }


def assert_rollups_match_a_recount(conn) -> None:
    fold_pending(conn)  # small writes queue their changes; a server's listener folds them
    conn.commit()
    assert conn.execute("SELECT count(*) AS n FROM tiles.pending_changes").fetchone()["n"] == 0
    kept = {table: rollup_rows(conn, table) for table in ROLLUPS}
    with conn.transaction(force_rollback=True):
        conn.execute("TRUNCATE " + ", ".join(f"tiles.{t}" for t in ROLLUPS))
        conn.execute(
            "DO $$ BEGIN EXECUTE tiles.incident_delta_sql('SELECT 1 AS sign, i.* FROM incidents i'); END $$"
        )
        for table in ROLLUPS:
            assert rollup_rows(conn, table) == kept[table], table


def file_many(conn, count: int) -> None:
    conn.execute(
        """INSERT INTO incidents (geom, grid_id, category_code, channel, reported_at)
           SELECT p, grid_at(p), (ARRAY['dispute', 'sanitation', 'epidemic'])[1 + i %% 3], 'app',
                  timestamptz '2026-05-01 00:00+00' + i * interval '7 hours'
             FROM generate_series(1, %s) AS i,
                  LATERAL (SELECT ST_SetSRID(ST_MakePoint(103.3 + (i * 0.0137) %% 0.1,
                                                          29.85 + (i * 0.0071) %% 0.1), 4326) AS p) q""",
        [count],
    )


def test_rollups_follow_inserts_workflow_updates_and_deletes(conn):
    file_many(conn, 60)
    conn.execute(
        """UPDATE incidents SET status = 'dispatched', accepted_at = reported_at,
                  dispatched_at = reported_at + interval '1 hour', due_at = reported_at + interval '1 day'
            WHERE id % 2 = 0"""
    )
    conn.execute(
        """UPDATE incidents SET status = 'closed', resolved_at = reported_at + interval '5 hours',
                  verified_at = reported_at + interval '6 hours',
                  closed_at = reported_at + (id % 40) * interval '1 hour'
            WHERE id % 4 = 0"""
    )
    conn.execute(
        "UPDATE incidents SET category_code = 'dispute', geom = ST_Translate(geom, 0.001, 0) WHERE id % 5 = 0"
    )
    conn.execute("UPDATE incidents SET description = 'no tile change' WHERE id % 7 = 0")
    conn.execute("DELETE FROM incidents WHERE id IN (SELECT max(id) FROM incidents)")
    conn.commit()
    assert_rollups_match_a_recount(conn)
    total = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"]
    per_level = conn.execute("SELECT level, sum(n) AS n FROM tiles.incident_cells GROUP BY level").fetchall()
    assert {row["n"] for row in per_level} == {total}
    cells_unlike_their_totals = conn.execute(
        """SELECT count(*) AS n
             FROM (SELECT level, cx, cy, sum(n) AS n, sum(n_open) AS n_open
                     FROM tiles.incident_cells GROUP BY 1, 2, 3) AS per_category
             FULL JOIN tiles.incident_cell_totals AS t USING (level, cx, cy)
            WHERE coalesce(per_category.n, 0) <> coalesce(t.n, 0)
               OR coalesce(per_category.n_open, 0) <> coalesce(t.n_open, 0)"""
    ).fetchone()["n"]
    assert cells_unlike_their_totals == 0
    # Heatmap tiles find their hexagons through the stored outlines: every counted cell has one.
    cells_without_outline = conn.execute(
        """SELECT count(*) AS n FROM (SELECT DISTINCT cell FROM tiles.density_cells WHERE n > 0) AS d
            WHERE NOT EXISTS (SELECT 1 FROM tiles.h3_cell_outlines o
                               WHERE o.cell = d.cell AND o.res = tiles.h3_resolution(d.cell))"""
    ).fetchone()["n"]
    assert cells_without_outline == 0


def test_a_bulk_statement_logs_one_event(conn):
    before = conn.execute("SELECT coalesce(max(id), 0) AS id FROM tiles.change_events").fetchone()["id"]
    file_many(conn, 1500)
    conn.commit()
    events = conn.execute(
        "SELECT kind, count, bbox FROM tiles.change_events WHERE id > %s", [before]
    ).fetchall()
    assert [(e["kind"], e["count"]) for e in events] == [("bulk", 1500)]
    assert_rollups_match_a_recount(conn)


@pytest.fixture
def operator(database_url):
    return bearer(token_for(database_url, "operator1"))


def test_grid_tiles_count_open_overdue_and_response_times(conn, client, operator):
    # The fixture incident of the NEAR grid: overdue since yesterday; open ones due 40 days ago
    # (a past month), an hour ago (today) and a minute ago (this hour, or the last one); one
    # closed late after 10 hours; one on time; one open and not yet due.
    conn.execute(
        """UPDATE incidents SET status = 'dispatched', dispatched_at = reported_at,
                  due_at = now() - interval '1 day' WHERE grid_id = (SELECT id FROM grids WHERE code = %s)""",
        ["511423001001001"],
    )
    conn.execute(
        """INSERT INTO incidents (geom, grid_id, category_code, channel, status, reported_at,
                                 dispatched_at, due_at, resolved_at, verified_at, closed_at)
           SELECT p, grid_at(p), 'sanitation', 'app', s, now() - interval '50 days',
                  now() - interval '50 days', d, c, c, c
             FROM (VALUES ('dispatched', now() - interval '40 days', NULL::timestamptz),
                          ('dispatched', now() - interval '1 hour', NULL),
                          ('dispatched', now() - interval '1 minute', NULL),
                          ('in_progress', now() + interval '1 hour', NULL),
                          ('closed', now() - interval '50 days' + interval '5 hours',
                           now() - interval '50 days' + interval '10 hours'),
                          ('closed', now(), now() - interval '50 days' + interval '10 hours')) AS v(s, d, c),
                  ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS p""",
        list(NEAR),
    )
    conn.commit()
    assert_rollups_match_a_recount(conn)
    grid = decode(client.get(tile_path("grids", NEAR, 14), headers=operator).data)["grids"]["features"][0]
    assert grid["properties"]["open"] == 5
    assert grid["properties"]["overdue"] == 5
    response = decode(client.get(tile_path("response", NEAR, 14), headers=operator).data)
    props = response["response"]["features"][0]["properties"]
    assert props["closed"] == 2
    # Closed on time ÷ due (docs/analytics.md): one of two closed cases on time, four open past due.
    assert props["on_time_rate"] == pytest.approx(1 / 6, abs=1e-3)
    assert 10 / 1.19 <= props["median_close_h"] <= 10 * 1.19
