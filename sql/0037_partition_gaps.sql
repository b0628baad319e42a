-- Gaps between sibling grids that the last grid import accepted as warnings
-- (server/importers/topology.py): the coverage analytics list them until an import fills them.
CREATE TABLE partition_gaps (
    id bigserial PRIMARY KEY,
    parent_code text NOT NULL,
    bordering text[] NOT NULL DEFAULT '{}',
    area_m2 double precision NOT NULL CHECK (area_m2 > 0),
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partition_gaps_parent_idx ON partition_gaps (parent_code);
