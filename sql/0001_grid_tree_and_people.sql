-- The grid tree (county → township → village → grid → microgrid), departments and people.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS ltree;

CREATE TABLE grid_levels (
    level text PRIMARY KEY,
    depth smallint NOT NULL UNIQUE CHECK (depth BETWEEN 1 AND 5),
    name_zh text NOT NULL,
    name_en text NOT NULL
);
INSERT INTO grid_levels (level, depth, name_zh, name_en) VALUES
    ('county',    1, '县/区',     'County'),
    ('township',  2, '乡镇/街道', 'Township'),
    ('village',   3, '村/社区',   'Village'),
    ('grid',      4, '网格',      'Grid'),
    ('microgrid', 5, '微网格',    'Micro-grid');

CREATE TABLE departments (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_]{2,40}$'),
    name_zh text NOT NULL,
    name_en text
);

CREATE TABLE users (
    id serial PRIMARY KEY,
    username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.-]{2,64}$'),
    display_name text NOT NULL,
    role text NOT NULL CHECK (role IN ('inspector', 'operator', 'department', 'leader', 'admin')),
    department_id integer REFERENCES departments (id),
    phone text,
    password_hash text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A department handler belongs to exactly one department; nobody else belongs to one.
    CHECK ((role = 'department') = (department_id IS NOT NULL))
);

CREATE TABLE grids (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,40}$'),
    level text NOT NULL REFERENCES grid_levels (level),
    parent_id integer REFERENCES grids (id),
    -- Ids from the root down to this grid: ancestors are its prefixes, descendants match
    -- `path <@ this.path`. Kept by a trigger; never written by hand.
    path ltree NOT NULL,
    name_zh text NOT NULL CHECK (name_zh <> ''),
    name_en text,
    households integer CHECK (households >= 0),
    population integer CHECK (population >= 0),
    member_id integer REFERENCES users (id),
    geom geometry(MultiPolygon, 4326) NOT NULL
        CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
        CHECK (ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180
               AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 'county') = (parent_id IS NULL))
);
CREATE INDEX grids_geom_idx ON grids USING gist (geom);
CREATE INDEX grids_path_idx ON grids USING gist (path);
CREATE INDEX grids_parent_idx ON grids (parent_id);
CREATE INDEX grids_level_idx ON grids (level);
CREATE INDEX grids_member_idx ON grids (member_id);

-- Keep `path` and check that a child sits strictly below its parent's level.
CREATE FUNCTION grids_set_path() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_path ltree;
    parent_depth smallint;
    own_depth smallint;
BEGIN
    SELECT depth INTO own_depth FROM grid_levels WHERE level = NEW.level;
    IF NEW.parent_id IS NULL THEN
        NEW.path := text2ltree(NEW.id::text);
    ELSE
        SELECT g.path, l.depth INTO parent_path, parent_depth
          FROM grids g JOIN grid_levels l USING (level) WHERE g.id = NEW.parent_id;
        IF own_depth <= parent_depth THEN
            RAISE EXCEPTION 'grid % (%) cannot sit under a % grid', NEW.code, NEW.level,
                (SELECT level FROM grids WHERE id = NEW.parent_id)
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.path := parent_path || text2ltree(NEW.id::text);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER grids_set_path BEFORE INSERT OR UPDATE OF parent_id, level ON grids
    FOR EACH ROW EXECUTE FUNCTION grids_set_path();

-- Moving a grid moves its subtree.
CREATE FUNCTION grids_move_subtree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE grids SET path = NEW.path || subpath(path, nlevel(OLD.path))
     WHERE path <@ OLD.path AND id <> NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER grids_move_subtree AFTER UPDATE OF parent_id ON grids
    FOR EACH ROW WHEN (OLD.path IS DISTINCT FROM NEW.path)
    EXECUTE FUNCTION grids_move_subtree();

COMMENT ON TABLE grids IS 'The grid tree: one row per county, township, village, grid or micro-grid.';
COMMENT ON COLUMN grids.member_id IS 'The grid member (网格员) responsible for walking this grid.';
