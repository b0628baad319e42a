-- Zoomed-out incident cells read from an even pyramid level that matches the output level, so a
-- tile never aggregates more than 32 x 32 cells per category (0021 read 64 x 64 at even zooms and
-- folded them 2 x 2, the slowest tile at 10,000,000 incidents).
CREATE OR REPLACE FUNCTION tiles.incidents(
    z integer, x integer, y integer, category text[], status text[],
    period_start date, period_end date, role text)
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
