import re
from collections import Counter

import psycopg
import pytest

from server.db.migrate import BASELINE, MigrationError, discover, function_files, migrate

# Functions and triggers in the database that no file of sql/functions defines: those of extensions.
OWN_FUNCTIONS = """
    SELECT p.pronamespace::regnamespace::text || '.' || p.proname AS name
      FROM pg_proc p
     WHERE p.pronamespace IN ('public'::regnamespace, 'tiles'::regnamespace)
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"""


def test_migrations_apply_once_and_record_versions(empty_database_url):
    applied = migrate(empty_database_url)
    assert [f.path for f in applied] == [m.path for m in discover()] + [f.path for f in function_files()]
    assert migrate(empty_database_url) == []
    with psycopg.connect(empty_database_url) as conn:
        recorded = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [row[0] for row in recorded] == [m.version for m in discover()]
    assert discover()[0].path.name == BASELINE


def test_functions_and_triggers_are_defined_once_in_function_files(conn):
    for migration in discover():
        assert not re.search(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|TRIGGER|VIEW)", migration.text, re.I), (
            f"{migration.path.name}: functions, triggers and views go in sql/functions/"
        )
    text = "\n".join(file.text for file in function_files())
    functions = Counter(re.findall(r"^CREATE OR REPLACE FUNCTION ([\w.]+)\(", text, re.M))
    triggers = Counter(re.findall(r"^CREATE OR REPLACE TRIGGER (\w+) .*? ON ([\w.]+)", text, re.M | re.S))
    assert [name for name, n in functions.items() if n > 1] == []
    assert [name for name, n in triggers.items() if n > 1] == []
    # Qualified as the database names them: public functions without a schema in the files.
    defined = {name if "." in name else f"public.{name}" for name in functions}
    assert {row["name"] for row in conn.execute(OWN_FUNCTIONS).fetchall()} == defined
    in_database = conn.execute(
        "SELECT tgname, tgrelid::regclass::text AS tbl FROM pg_trigger WHERE NOT tgisinternal"
    ).fetchall()
    assert {(row["tgname"], row["tbl"]) for row in in_database} == set(triggers)


def test_an_edited_migration_is_refused(empty_database_url, tmp_path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int);")
    migrate(empty_database_url, tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(empty_database_url, tmp_path)


def test_a_failing_upgrade_leaves_the_database_as_it_was(empty_database_url, tmp_path):
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (a int);")
    migrate(empty_database_url, tmp_path)
    (tmp_path / "0002_next.sql").write_text("CREATE TABLE next (a int);")
    (tmp_path / "0003_bad.sql").write_text("CREATE TABLE half (a int); SELECT 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_database_url, tmp_path)
    (tmp_path / "0003_bad.sql").unlink()
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "area.sql").write_text(
        "CREATE FUNCTION broken() RETURNS int LANGUAGE sql AS 'SELECT 1/0';\nSELECT broken();"
    )
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_database_url, tmp_path)
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('next'), to_regclass('half')").fetchone() == (None, None)
        assert conn.execute("SELECT to_regprocedure('broken()')").fetchone()[0] is None
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(1,)]


def test_a_function_file_runs_again_when_it_changes_or_a_migration_ran(empty_database_url, tmp_path):
    functions = tmp_path / "functions"
    functions.mkdir()
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int);")
    (functions / "area.sql").write_text(
        "CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 1';"
    )

    def answer() -> int:
        with psycopg.connect(empty_database_url) as conn:
            return conn.execute("SELECT answer()").fetchone()[0]

    assert [f.path.name for f in migrate(empty_database_url, tmp_path)] == ["0001_first.sql", "area.sql"]
    assert migrate(empty_database_url, tmp_path) == []
    (functions / "area.sql").write_text(
        "CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 2';"
    )
    assert [f.path.name for f in migrate(empty_database_url, tmp_path)] == ["area.sql"]
    assert answer() == 2
    # A migration that replaces what a file defines does not win over the file.
    (tmp_path / "0002_second.sql").write_text(
        "CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 3';"
    )
    assert [f.path.name for f in migrate(empty_database_url, tmp_path)] == ["0002_second.sql", "area.sql"]
    assert answer() == 2
    # A file taken away is forgotten: brought back unchanged, it runs again.
    (functions / "area.sql").rename(tmp_path / "kept.txt")
    assert migrate(empty_database_url, tmp_path) == []
    (tmp_path / "kept.txt").rename(functions / "area.sql")
    assert [f.path.name for f in migrate(empty_database_url, tmp_path)] == ["area.sql"]


def test_a_migration_behind_the_newest_applied_is_refused(empty_database_url, tmp_path):
    (tmp_path / "0002_second.sql").write_text("SELECT 1;")
    migrate(empty_database_url, tmp_path)
    (tmp_path / "0001_late.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="forward-only"):
        migrate(empty_database_url, tmp_path)


def test_grid_at_finds_the_finest_grid_and_breaks_edge_ties_by_code(conn):
    inside = conn.execute(
        "SELECT g.code FROM grids g WHERE g.id = grid_at(ST_SetSRID(ST_Point(103.31, 29.86), 4326))"
    ).fetchone()
    assert inside["code"] == "511423001001001"
    # x = 103.325 is the edge between grids 001 and 002 of the first village.
    edge = conn.execute(
        "SELECT g.code FROM grids g WHERE g.id = grid_at(ST_SetSRID(ST_Point(103.325, 29.86), 4326))"
    ).fetchone()
    assert edge["code"] == "511423001001001"
    outside = conn.execute("SELECT grid_at(ST_SetSRID(ST_Point(100, 20), 4326)) AS id").fetchone()
    assert outside["id"] is None


def test_the_event_log_is_append_only(conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE incident_events SET note = 'rewritten'")


def test_grid_paths_give_ancestors_and_descendants(conn):
    descendants = conn.execute(
        """SELECT count(*) AS n FROM grids d, grids t
            WHERE t.code = '511423001' AND d.path <@ t.path AND d.id <> t.id"""
    ).fetchone()
    assert descendants["n"] == 2 + 4  # two villages, four grids
    ancestors = conn.execute(
        """SELECT array_agg(a.level ORDER BY nlevel(a.path)) AS levels FROM grids a, grids g
            WHERE g.code = '511423001001001' AND a.path @> g.path AND a.id <> g.id"""
    ).fetchone()
    assert ancestors["levels"] == ["county", "township", "village"]


def test_invalid_geometry_and_impossible_coordinates_are_refused(conn):
    county = conn.execute("SELECT id FROM grids WHERE level = 'county'").fetchone()["id"]
    bowtie = "MULTIPOLYGON(((0 0, 1 1, 1 0, 0 1, 0 0)))"
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO grids (code, level, parent_id, name_zh, geom)"
            " VALUES ('bad', 'township', %s, '坏', ST_GeomFromText(%s, 4326))",
            [county, bowtie],
        )
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO incidents (geom, grid_id, category_code, channel)"
            " VALUES (ST_SetSRID(ST_Point(200, 95), 4326), %s, 'sanitation', 'app')",
            [county],
        )
