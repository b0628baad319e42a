-- The coverage layer and the rollup it reads: where grid members have not walked lately
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- ## The latest patrol of each grid (tiles.grid_last_patrol)

-- New patrols: a grid's row moves to the latest-started one. From the transition table only, so
-- a bulk COPY (the demo, with the patrols' indexes dropped while it loads) costs one sort.
CREATE OR REPLACE FUNCTION tiles.patrols_inserted_last() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO tiles.grid_last_patrol AS t (grid_id, started_at, ended_at)
    SELECT DISTINCT ON (grid_id) grid_id, started_at, ended_at
      FROM new_rows
     ORDER BY grid_id, started_at DESC, id DESC
    ON CONFLICT (grid_id) DO UPDATE SET started_at = excluded.started_at, ended_at = excluded.ended_at
     WHERE excluded.started_at >= t.started_at;
    RETURN NULL;
END $fn$;

-- Patrols changed or removed (not done by gridwatch itself, but by hand or a script): the grids
-- they touched are looked up again.
CREATE OR REPLACE FUNCTION tiles.patrols_removed_last() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    touched integer[];
BEGIN
    SELECT array_agg(DISTINCT grid_id) INTO touched FROM old_rows;
    IF TG_OP = 'UPDATE' THEN  -- new_rows exists only then (plpgsql plans this branch only then)
        SELECT array_agg(DISTINCT g) INTO touched
          FROM unnest(touched || (SELECT array_agg(grid_id) FROM new_rows)) AS g;
    END IF;
    DELETE FROM tiles.grid_last_patrol WHERE grid_id = ANY (touched);
    INSERT INTO tiles.grid_last_patrol (grid_id, started_at, ended_at)
    SELECT t.grid_id, last.started_at, last.ended_at
      FROM unnest(touched) AS t(grid_id)
      JOIN LATERAL (SELECT p.started_at, p.ended_at FROM patrols p WHERE p.grid_id = t.grid_id
                     ORDER BY p.started_at DESC, p.id DESC LIMIT 1) last ON true;
    RETURN NULL;
END $fn$;

CREATE OR REPLACE TRIGGER patrols_inserted_last AFTER INSERT ON patrols
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.patrols_inserted_last();
CREATE OR REPLACE TRIGGER patrols_updated_last AFTER UPDATE ON patrols
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiles.patrols_removed_last();
CREATE OR REPLACE TRIGGER patrols_deleted_last AFTER DELETE ON patrols
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tiles.patrols_removed_last();

-- ## The coverage layer

-- A grid not patrolled for this many days is a coverage gap.
CREATE OR REPLACE FUNCTION tiles.stale_patrol_days() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';

-- From zoom 10 each grid with the days since its last patrol; at zoom 5-9, where a grid is a few
-- pixels, each township with its coverage gaps counted: grids, grids without a member, grids not
-- patrolled for 7 days (or never), and the longest time since a patrol among its grids.
CREATE OR REPLACE FUNCTION tiles.coverage(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH last_patrols AS (
        -- From zoom 10 each grid drawn; below, every grid of each township drawn.
        SELECT g.id AS shown_id, g.member_id, last.ended_at
          FROM grids g
          LEFT JOIN tiles.grid_last_patrol last ON last.grid_id = g.id
         WHERE z >= 10 AND g.level = 'grid' AND g.geom && tiles.envelope_4326(z, x, y)
        UNION ALL
        SELECT t.id, g.member_id, last.ended_at
          FROM grids t
          JOIN grids g ON g.path <@ t.path AND g.level = 'grid'
          LEFT JOIN tiles.grid_last_patrol last ON last.grid_id = g.id
         WHERE z < 10 AND t.level = 'township' AND t.geom && tiles.envelope_4326(z, x, y)
    ), shown AS (
        SELECT shown_id,
               count(*) AS grids,
               count(*) FILTER (WHERE member_id IS NULL) AS without_member,
               count(*) FILTER (WHERE ended_at IS NULL
                                   OR ended_at < now() - tiles.stale_patrol_days() * interval '1 day')
                   AS stale,
               -- The longest gap, unknown when a grid was never patrolled.
               CASE WHEN count(ended_at) = count(*)
                    THEN floor(extract(epoch FROM now() - min(ended_at)) / 86400)::integer END
                   AS days_since_patrol
          FROM last_patrols
         GROUP BY shown_id
    )
    SELECT coalesce(ST_AsMVT(t, 'coverage', 4096, 'geom', 'id'), ''::bytea)
      FROM (SELECT ST_AsMVTGeom(ST_Transform(g.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
                   g.id, g.code, g.name_zh AS name,
                   CASE WHEN z >= 10 THEN s.without_member = 0 END AS has_member,
                   s.days_since_patrol,
                   CASE WHEN z < 10 THEN s.grids END AS grids,
                   CASE WHEN z < 10 THEN s.without_member END AS without_member,
                   CASE WHEN z < 10 THEN s.stale END AS not_patrolled_7d
              FROM shown s
              JOIN grids g ON g.id = s.shown_id) t
     WHERE t.geom IS NOT NULL
$fn$;
