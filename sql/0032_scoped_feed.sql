-- The live map within each user's scope (server/auth/scope.py), and a feed that ends a stream
-- whose credentials end.

-- ## The incidents layer lists only the points its viewer may read

-- Two more arguments than the other layers (layers/catalog.py: `scoped`): the grids
-- (`scope_grids`, an inspector's grids and every grid below) or the department
-- (`scope_department`) whose incidents the viewer may read; NULL where the scope does not limit.
-- Counts per cell stay county-wide: every role that reads the layer may see counts.
DROP FUNCTION tiles.incidents(integer, integer, integer, text[], text[], date, date, text);

CREATE FUNCTION tiles.incidents(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text, scope_grids integer[], scope_department integer)
RETURNS bytea LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
    tile bytea;
    in_tile bigint;
BEGIN
    IF z >= 15 THEN
        -- Upper bound from the category rollup (status and period can only lower it).
        SELECT coalesce(sum(c.n), 0) INTO in_tile FROM tiles.cell_counts(z, x, y, z, category, NULL, NULL, NULL) c;
    END IF;
    IF z >= 15 AND in_tile <= tiles.points_limit() THEN
        SELECT ST_AsMVT(t, 'incidents', 4096, 'geom', 'id') INTO tile
          FROM (SELECT ST_AsMVTGeom(ST_Transform(i.geom, 3857), ST_TileEnvelope(z, x, y), 4096, 0, true) AS geom,
                       i.id, i.category_code AS category, i.status, i.priority,
                       floor(extract(epoch FROM now() - i.reported_at) / 3600)::integer AS age_h
                  FROM incidents i
                 WHERE i.geom && tiles.envelope_4326(z, x, y)
                   AND (scope_grids IS NULL OR i.grid_id = ANY (scope_grids))
                   AND (scope_department IS NULL OR i.department_id = scope_department)
                   AND (incidents.category IS NULL OR i.category_code = ANY (incidents.category))
                   AND (incidents.status IS NULL OR i.status = ANY (incidents.status))
                   AND (period_start IS NULL
                        OR i.reported_at >= period_start::timestamp AT TIME ZONE 'Asia/Shanghai')
                   AND (period_end IS NULL
                        OR i.reported_at < period_end::timestamp AT TIME ZONE 'Asia/Shanghai')) t
         WHERE t.geom IS NOT NULL;
    ELSE
        -- Cells of the largest even level <= z + 5, read without a finer level below them:
        -- 32 x 32 cells of 128 px at odd zooms, 16 x 16 of 256 px at even ones.
        SELECT ST_AsMVT(t, 'incidents', 4096, 'geom') INTO tile
          FROM (SELECT ST_Point(((c.cx - (x << (c.level - z))) + 0.5) * (4096 >> (c.level - z)),
                                ((c.cy - (y << (c.level - z))) + 0.5) * (4096 >> (c.level - z))) AS geom,
                       sum(c.n)::integer AS count, sum(c.n_open)::integer AS open
                  FROM tiles.cell_counts(z, x, y, least(z + 5 - (z + 5) % 2, 18), category, status,
                                         period_start, period_end) c
                 GROUP BY c.cx, c.cy, c.level) t;
    END IF;
    RETURN coalesce(tile, ''::bytea);
END $fn$;

-- ## Credentials that end

-- The change feed (server/feed) ends the streams of a revoked token at once, and those of a
-- user who was deactivated or whose role or department changed (they reconnect with their new
-- rights, or not at all).
CREATE FUNCTION auth_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'api_tokens' THEN
        PERFORM pg_notify('gridwatch_auth',
                          json_build_object('kind', 'token', 'token_id', OLD.id, 'user_id', OLD.user_id)::text);
    ELSE
        PERFORM pg_notify('gridwatch_auth', json_build_object('kind', 'user', 'user_id', OLD.id)::text);
    END IF;
    RETURN NULL;
END $fn$;

CREATE TRIGGER api_tokens_revoked_feed AFTER UPDATE OF revoked_at ON api_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION auth_changed();
CREATE TRIGGER api_tokens_deleted_feed AFTER DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION auth_changed();
CREATE TRIGGER users_rights_changed_feed AFTER UPDATE OF active, role, department_id ON users
    FOR EACH ROW
    WHEN ((OLD.active, OLD.role, OLD.department_id) IS DISTINCT FROM (NEW.active, NEW.role, NEW.department_id))
    EXECUTE FUNCTION auth_changed();
CREATE TRIGGER users_deleted_feed AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION auth_changed();
