-- The grid tree's own logic: the `path` trigger that keeps ancestors and descendants one
-- index lookup away, and grid_at(), the finest grid of a point
-- (re-runnable: applied by `gridwatch db migrate` whenever it changes; server/db/migrate.py).

-- Keep `path` and check that a child sits strictly below its parent's level.
CREATE OR REPLACE FUNCTION grids_set_path() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE TRIGGER grids_set_path BEFORE INSERT OR UPDATE OF parent_id, level ON grids
    FOR EACH ROW EXECUTE FUNCTION grids_set_path();

-- Moving a grid moves its subtree.
CREATE OR REPLACE FUNCTION grids_move_subtree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE grids SET path = NEW.path || subpath(path, nlevel(OLD.path))
     WHERE path <@ OLD.path AND id <> NEW.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER grids_move_subtree AFTER UPDATE OF parent_id ON grids
    FOR EACH ROW WHEN (OLD.path IS DISTINCT FROM NEW.path)
    EXECUTE FUNCTION grids_move_subtree();

-- grid_at(point): the finest grid that covers a point, or NULL outside every grid.
-- A point on an edge shared by grids of the same level (or a vertex shared by several) goes
-- to the grid with the smallest code: a stable, documented choice (docs/architecture.md).
CREATE OR REPLACE FUNCTION grid_at(point geometry) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.id
      FROM grids g
      JOIN grid_levels l USING (level)
     WHERE g.geom && point AND ST_Covers(g.geom, point)
     ORDER BY l.depth DESC, g.code
     LIMIT 1
$$;
