-- Patrols of grid members: a check-in (point) or a walked track (line), with time.
CREATE TABLE patrols (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id),
    grid_id integer NOT NULL REFERENCES grids (id),
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL
        CHECK (GeometryType(geom) IN ('POINT', 'LINESTRING') AND ST_IsValid(geom)
               AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180
               AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90),
    CHECK (ended_at >= started_at)
);
CREATE INDEX patrols_grid_time_idx ON patrols (grid_id, started_at DESC);
CREATE INDEX patrols_geom_idx ON patrols USING gist (geom);
