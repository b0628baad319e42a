-- The baseline: release 0.1's tables, indexes, constraints and seed data, in one file.
--
-- Release 0.1 built its schema with migrations 0001-0042, which defined functions and triggers
-- as well and redefined some of them several times. This file creates the same tables as those
-- migrations left them (column order included), by area; every function and trigger lives in
-- sql/functions/, applied after the migrations. A fresh database runs this file and records it
-- as version 42; a release 0.1 database already has all of it, so `gridwatch db migrate` records
-- this file in place of 0.1's migrations without running it (server/db/migrate.py).
-- tests/test_upgrade.py checks that both end with the same schema.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS ltree;
-- The H3 functions of the heatmap run Uber's `h3` package in the database (docs/tiles.md).
CREATE EXTENSION IF NOT EXISTS plpython3u;


-- ## The grid tree (county → township → village → grid → microgrid), departments and people

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
INSERT INTO departments (code, name_zh, name_en) VALUES
    ('emergency',       '应急管理局',       'Emergency Management Bureau'),
    ('environment',     '生态环境局',       'Ecology and Environment Bureau'),
    ('agriculture',     '农业农村局',       'Agriculture and Rural Affairs Bureau'),
    ('housing',         '住房和城乡建设局', 'Housing and Urban-Rural Development Bureau'),
    ('water',           '水利局',           'Water Resources Bureau'),
    ('health',          '卫生健康局',       'Health Commission'),
    ('civil_affairs',   '民政局',           'Civil Affairs Bureau'),
    ('natural_resources', '自然资源局',     'Natural Resources Bureau'),
    ('justice',         '司法局',           'Justice Bureau'),
    ('urban_management', '综合行政执法局',  'Urban Management and Law Enforcement Bureau');

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
    -- `path <@ this.path`. Kept by a trigger (sql/functions/grids.sql); never written by hand.
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

COMMENT ON TABLE grids IS 'The grid tree: one row per county, township, village, grid or micro-grid.';
COMMENT ON COLUMN grids.member_id IS 'The grid member (网格员) responsible for walking this grid.';

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


-- ## Incident categories and their time limits

-- A category's limit runs either in calendar time (a hazard does not wait for Monday) or in the
-- county's working hours (a pile of garbage has "1 working day"; see the work calendar below).
CREATE TABLE categories (
    code text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{2,40}$'),
    name_zh text NOT NULL,
    name_en text NOT NULL,
    group_code text NOT NULL,
    time_limit interval NOT NULL CHECK (time_limit > interval '0'),
    default_department_id integer REFERENCES departments (id),
    default_priority text NOT NULL DEFAULT 'normal'
        CHECK (default_priority IN ('low', 'normal', 'high', 'urgent')),
    -- Possible-duplicate search: open incidents of this category within this radius and window.
    duplicate_radius_m integer NOT NULL DEFAULT 100 CHECK (duplicate_radius_m > 0),
    duplicate_window interval NOT NULL DEFAULT interval '3 days',
    active boolean NOT NULL DEFAULT true,
    time_limit_unit text NOT NULL DEFAULT 'calendar'
        CHECK (time_limit_unit IN ('calendar', 'working'))
);

-- One working day is 7 working hours (08:30-12:00, 14:00-17:30): work done in office hours has
-- working-time limits; emergencies keep calendar time.
INSERT INTO categories (code, name_zh, name_en, group_code, time_limit, time_limit_unit,
                        default_department_id, default_priority, duplicate_radius_m, duplicate_window)
SELECT c.code, c.name_zh, c.name_en, c.group_code, c.time_limit::interval, c.unit, d.id,
       c.priority, c.radius, c.win::interval
  FROM (VALUES
    ('safety_hazard',    '安全隐患', 'Safety hazard',       'safety',      '2 days',   'calendar', 'emergency',        'high',   100, '3 days'),
    ('straw_burning',    '秸秆焚烧', 'Straw burning',       'environment', '4 hours',  'calendar', 'agriculture',      'urgent', 500, '1 day'),
    ('sanitation',       '环境卫生', 'Sanitation',          'environment', '7 hours',  'working',  'urban_management', 'normal', 100, '3 days'),
    ('dispute',          '矛盾纠纷', 'Dispute',             'social',      '35 hours', 'working',  'justice',          'normal',  50, '7 days'),
    ('public_facility',  '公共设施', 'Public facility',     'facility',    '21 hours', 'working',  'housing',          'normal',  50, '7 days'),
    ('epidemic',         '疫情防控', 'Epidemic prevention', 'health',      '1 day',    'calendar', 'health',           'high',   200, '3 days'),
    ('resident_service', '民生服务', 'Resident service',    'social',      '21 hours', 'working',  'civil_affairs',    'normal',  50, '7 days'),
    ('flood_geohazard',  '防汛地灾', 'Flood and geohazard', 'safety',      '6 hours',  'calendar', 'water',            'urgent', 300, '1 day')
  ) AS c(code, name_zh, name_en, group_code, time_limit, unit, dept, priority, radius, win)
  JOIN departments d ON d.code = c.dept;


-- ## Incidents, with a timestamp per workflow step, and their event log

CREATE TABLE incidents (
    id bigserial PRIMARY KEY,
    geom geometry(Point, 4326) NOT NULL
        CHECK (NOT ST_IsEmpty(geom)
               AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90),
    accuracy_m real CHECK (accuracy_m >= 0 AND accuracy_m < 100000),
    -- The finest grid that contains the point.
    grid_id integer NOT NULL REFERENCES grids (id),
    category_code text NOT NULL REFERENCES categories (code),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    channel text NOT NULL
        CHECK (channel IN ('app', 'hotline_12345', 'hotline_110', 'wechat', 'open311', 'import')),
    reporter_id integer REFERENCES users (id),
    reporter_name text,
    reporter_phone text,
    -- 'registered' (挂账): filed on the grid center's register to be resumed later; its clock
    -- stops (due_at is cleared, the register event keeps the old one), yet it stays open.
    status text NOT NULL DEFAULT 'reported'
        CHECK (status IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress', 'registered',
                          'resolved', 'verified', 'closed')),
    priority text NOT NULL DEFAULT 'normal'
        CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    department_id integer REFERENCES departments (id),
    -- Who holds the case in the tiered handling: grid → village → township → county.
    handling_level text NOT NULL DEFAULT 'grid'
        CHECK (handling_level IN ('grid', 'village', 'township', 'county')),
    self_handled boolean NOT NULL DEFAULT false,
    rework_count integer NOT NULL DEFAULT 0 CHECK (rework_count >= 0),
    extension_count integer NOT NULL DEFAULT 0 CHECK (extension_count >= 0),
    duplicate_of bigint REFERENCES incidents (id),
    reported_at timestamptz NOT NULL DEFAULT now(),
    accepted_at timestamptz,
    rejected_at timestamptz,
    dispatched_at timestamptz,
    due_at timestamptz,
    resolved_at timestamptz,
    verified_at timestamptz,
    closed_at timestamptz,
    rated_at timestamptz,
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- When the reporter saw the problem, if it differs from when the report arrived: the phone
    -- page queues reports made offline and sends them later. reported_at stays the arrival time
    -- (the workflow clock starts there). The service refuses times more than 5 minutes ahead of
    -- the server clock or older than 7 days; the table keeps the part that needs no clock.
    observed_at timestamptz,
    -- The latest registration on the register (analytics: how long cases stay there).
    registered_at timestamptz,
    CHECK (accepted_at IS NULL OR accepted_at >= reported_at),
    CHECK (rejected_at IS NULL OR rejected_at >= reported_at),
    CHECK (dispatched_at IS NULL OR dispatched_at >= reported_at),
    CHECK (resolved_at IS NULL OR resolved_at >= reported_at),
    CHECK (verified_at IS NULL OR verified_at >= reported_at),
    CHECK (closed_at IS NULL OR closed_at >= reported_at),
    CHECK ((rating IS NULL) = (rated_at IS NULL)),
    CHECK (duplicate_of IS NULL OR duplicate_of <> id),
    CONSTRAINT incidents_observed_before_arrival
        CHECK (observed_at IS NULL OR observed_at <= reported_at + interval '5 minutes'),
    CONSTRAINT incidents_registered_after_report
        CHECK (registered_at IS NULL OR registered_at >= reported_at)
);
CREATE INDEX incidents_geom_idx ON incidents USING gist (geom);
-- The possible-duplicate search of every filing looks for open, not yet linked incidents near
-- the new point: about 5 % of a county's incidents, 0.05 ms instead of 0.30 ms with the full
-- index at 1,000,000 incidents.
CREATE INDEX incidents_open_geom_idx ON incidents USING gist (geom)
    WHERE status NOT IN ('closed', 'rejected') AND duplicate_of IS NULL;
-- The API pages incidents newest first by (reported_at, id); this index also serves every range
-- scan on reported_at.
CREATE INDEX incidents_reported_id_idx ON incidents (reported_at DESC, id DESC);
CREATE INDEX incidents_grid_reported_idx ON incidents (grid_id, reported_at);
CREATE INDEX incidents_category_reported_idx ON incidents (category_code, reported_at);
CREATE INDEX incidents_status_idx ON incidents (status);
CREATE INDEX incidents_department_idx ON incidents (department_id, status);
CREATE INDEX incidents_open_due_idx ON incidents (due_at)
    WHERE status NOT IN ('closed', 'rejected');
-- The response indicators (server/analytics/response.py) pick the cases of a period by when they
-- were received, fell due, or were closed or rejected: one index for each, so a month's bulletin
-- reads that month's cases, not the county's history. The live map's "closed today" counter
-- reads the closed ones too (dashboard/livestats.py).
CREATE INDEX incidents_due_at_idx ON incidents (due_at);
CREATE INDEX incidents_closed_at_idx ON incidents (closed_at) WHERE status = 'closed';
CREATE INDEX incidents_rejected_at_idx ON incidents (rejected_at) WHERE status = 'rejected';
-- The cases open at an earlier `as_of`: finished (closed or rejected) after it and reported by
-- then, both checked in the index. An expression index, not a partial one, so that ANALYZE keeps
-- statistics of the expression; server/analytics/response.py (`_finished_after`) writes it the
-- same way, and a test checks that the planner uses it.
CREATE INDEX incidents_finished_reported_idx ON incidents (coalesce(closed_at, rejected_at), reported_at);

-- The event log; append-only (a trigger refuses UPDATE and DELETE: sql/functions/incidents.sql).
CREATE TABLE incident_events (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at timestamptz NOT NULL DEFAULT now(),
    actor_id integer REFERENCES users (id),
    -- The same as '^[a-z_]{2,40}$', about three times cheaper for PostgreSQL's regex engine, and
    -- the demo load writes ~7 million events for a million incidents.
    action text NOT NULL CHECK (action ~ '^[a-z_]+$' AND length(action) BETWEEN 2 AND 40),
    from_status text,
    to_status text,
    note text,
    data jsonb
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, at);

-- Photos are kept in the database, cleaned (re-encoded without EXIF): they commit or roll back
-- with their incident, and a database backup holds them.
CREATE TABLE incident_photos (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    event_id bigint REFERENCES incident_events (id),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width integer NOT NULL CHECK (width > 0),
    height integer NOT NULL CHECK (height > 0),
    content bytea NOT NULL,
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_photos_incident_idx ON incident_photos (incident_id);


-- ## Patrols of grid members: a check-in (point) or a walked track (line), with time

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
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at >= started_at)
);
CREATE INDEX patrols_grid_time_idx ON patrols (grid_id, started_at DESC);
CREATE INDEX patrols_geom_idx ON patrols USING gist (geom);
CREATE INDEX patrols_ended_at_idx ON patrols (ended_at);
CREATE INDEX patrols_user_idx ON patrols (user_id, started_at DESC);


-- ## Idempotent filing: a retried POST finds what its first attempt created

-- One row per Idempotency-Key, for incidents and patrols filed from the phone. The primary key
-- serialises concurrent retries: the second INSERT waits for the first transaction and then
-- sees its row (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    user_id integer REFERENCES users (id),
    request_sha256 bytea NOT NULL CHECK (length(request_sha256) = 32),
    incident_id bigint REFERENCES incidents (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    patrol_id bigint REFERENCES patrols (id)
);


-- ## The work calendar: the county's working time, for limits in working hours

-- Daily working hours in the county's time zone on working weekdays, plus dated exceptions.
-- due_time() (sql/functions/work_calendar.sql) is the one place a due time is computed.

-- The calendar's settings: one row.
CREATE TABLE work_calendar (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    time_zone text NOT NULL DEFAULT 'Asia/Shanghai',
    -- ISO day numbers: 1 = Monday ... 7 = Sunday.
    working_weekdays smallint[] NOT NULL DEFAULT '{1,2,3,4,5}'
        CHECK (working_weekdays <@ '{1,2,3,4,5,6,7}'::smallint[])
);
INSERT INTO work_calendar DEFAULT VALUES;

-- The working hours of a working day, local time. The admin API keeps them from overlapping.
CREATE TABLE work_periods (
    starts time NOT NULL PRIMARY KEY,
    ends time NOT NULL,
    CHECK (ends > starts)
);
INSERT INTO work_periods VALUES ('08:30', '12:00'), ('14:00', '17:30');

-- Exceptions to the weekdays: a holiday on a weekday (working = false), or a weekend day that is
-- worked (调休, working = true). Entered each year from the State Council's holiday notice.
CREATE TABLE work_calendar_days (
    day date PRIMARY KEY,
    working boolean NOT NULL,
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 100)
);


-- ## Authentication: API tokens, login sessions and login throttling

-- Both live in the database so that every gunicorn worker sees the same state.
CREATE TABLE api_tokens (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the token: a stolen table gives no usable token, and the token is random
    -- with 256 bits, so a fast hash is enough (no salt or stretching needed).
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    label text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Login sessions kept on the server (server/auth/sessions.py): the browser's signed cookie holds
-- only a random secret, so a logout or a deactivation ends every copy of the cookie at once.
CREATE TABLE login_sessions (
    id bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the cookie's secret (256 random bits): a copied table opens no session.
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Refreshed at most once a minute by requests: the session ends `session_hours` after it.
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    remote_addr text NOT NULL DEFAULT ''
);
CREATE INDEX login_sessions_user_idx ON login_sessions (user_id);
CREATE INDEX login_sessions_last_seen_idx ON login_sessions (last_seen_at);

-- Login throttling (server/auth/ratelimit.py): one row per key (a username with an address, an
-- address, a username), counted by one INSERT ... ON CONFLICT per attempt *before* the password
-- is checked, so concurrent wrong passwords cannot all pass the count. Past a key's free failures
-- each further attempt waits twice as long as the one before (1 s, 2 s, ... 10 min) instead of
-- a hard lock that let anyone lock an account out from anywhere.
CREATE TABLE login_throttle (
    key text PRIMARY KEY,
    free integer NOT NULL,  -- attempts without delay in a window
    failures integer NOT NULL,
    last_at timestamptz NOT NULL,  -- the last attempt counted; a quiet window starts it afresh
    blocked_until timestamptz,
    refused boolean NOT NULL DEFAULT false  -- whether the latest attempt was refused (its answer)
);
CREATE INDEX login_throttle_last_at_idx ON login_throttle (last_at);

COMMENT ON TABLE login_throttle IS
    'Login attempts per key (user+address, address, user) in the current window; see sql/0042.';


-- ## The map tiles' rollups and change log (schema tiles; docs/tiles.md)

-- Every incident writer goes through the triggers of sql/functions/tiles_changes.sql, which
-- keep these tables current, so no code path can leave a rollup or a cached tile behind.
CREATE SCHEMA tiles;

-- ### Quadtree cells

-- The cell of a point at level L is the slippy-map tile (cx, cy) at zoom L: cells nest exactly
-- and line up with tile edges, so a tile reads whole cells. The pyramid stores the even levels
-- 6..18 (level 18: about 130 m cells here); `bx, by` is the cell's ancestor at level - 6, so
-- the cells of one tile are one index range.
CREATE TABLE tiles.pyramid_levels (level smallint PRIMARY KEY CHECK (level BETWEEN 6 AND 18 AND level % 2 = 0));
INSERT INTO tiles.pyramid_levels SELECT generate_series(6, 18, 2);

-- Counts per cell and category: what category-filtered tiles read. With the counts in the
-- primary key (INCLUDE) a tile's key range is an index-only scan of neighbouring pages instead
-- of one heap page per cell (cells are inserted in random order).
CREATE TABLE tiles.incident_cells (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    n_open integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy, category_code) INCLUDE (n, n_open)
);

-- Counts per cell, category, status and month of report: what status/period-filtered tiles read.
-- Stored up to level 14 only (about 2 km cells): finer levels hold nearly a row per incident.
CREATE TABLE tiles.incident_cells_detail (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy, category_code, status, month) INCLUDE (n)
);

-- A total per cell over all categories: what an unfiltered `incidents` tile reads (1,024 rows
-- for a zoom-11 tile instead of about 8,000 per-category rows).
CREATE TABLE tiles.incident_cell_totals (
    level smallint NOT NULL,
    bx integer NOT NULL,
    by integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    n integer NOT NULL,
    n_open integer NOT NULL,
    PRIMARY KEY (level, bx, by, cx, cy) INCLUDE (n, n_open)
);

-- ### Grid numbers

-- Per grid and every ancestor (so a township's numbers are one row): counts for the grids and
-- response layers. Overdue open incidents depend on the clock and are counted when a tile is built.
CREATE TABLE tiles.grid_stats (
    grid_id integer PRIMARY KEY REFERENCES grids (id) ON DELETE CASCADE,
    incidents integer NOT NULL DEFAULT 0,
    open_count integer NOT NULL DEFAULT 0,
    closed_count integer NOT NULL DEFAULT 0,
    closed_due integer NOT NULL DEFAULT 0,
    closed_on_time integer NOT NULL DEFAULT 0
);

-- Time to close as a histogram of quarter-octave buckets of minutes: bucket b holds durations
-- in [2^(b/4), 2^((b+1)/4)) minutes, so a median read from it is within 19 %.
CREATE TABLE tiles.grid_close_times (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    bucket smallint NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, bucket)
);

-- Open incidents past their due time depend on the clock, yet a tile must not read every open
-- incident. Open incidents are counted per grid (and ancestor) in UTC buckets of due_at: months,
-- days and hours. A grid's overdue count is the months before this one, the days of this month
-- before today, the hours of today before this one, and only the current hour from incidents
-- (the partial index on open due_at finds it): at most about 80 rows per grid.
CREATE TABLE tiles.grid_open_due (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_day date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_day)
);

CREATE TABLE tiles.grid_open_due_month (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_month)
);

CREATE TABLE tiles.grid_open_due_hour (
    grid_id integer NOT NULL REFERENCES grids (id) ON DELETE CASCADE,
    due_hour timestamptz NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (grid_id, due_hour)
);

-- The latest patrol of each finest grid: what the coverage layer draws (days since the last
-- patrol) without one lookup per grid shown.
CREATE TABLE tiles.grid_last_patrol (
    grid_id integer PRIMARY KEY REFERENCES grids (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL
);

-- ### H3 hexagons (the heatmap)

-- The resolutions stored. An incident counts in its resolution-10 cell and that cell's ancestors.
CREATE TABLE tiles.h3_levels (res smallint PRIMARY KEY CHECK (res BETWEEN 3 AND 10));
INSERT INTO tiles.h3_levels SELECT generate_series(3, 10);

-- Counts per H3 cell (resolutions 3-10) and category: what unfiltered and category-filtered
-- heatmap tiles read. The cell index carries its resolution.
CREATE TABLE tiles.density_cells (
    cell bigint NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (cell, category_code) INCLUDE (n)
);

-- Counts per H3 cell (resolutions 3-7), category, status and month of report: what status- or
-- period-filtered heatmap tiles read.
CREATE TABLE tiles.density_cells_detail (
    cell bigint NOT NULL,
    category_code text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    month date NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (cell, category_code, status, month) INCLUDE (n)
);

-- Each H3 cell's outline in EPSG:3857, stored when the cell first holds an incident, so a
-- heatmap tile finds its hexagons through an index. One partition per resolution, each with its
-- own spatial index: a tile reads one resolution, and one index over all eight would return the
-- finer cells of the same area too.
CREATE TABLE tiles.h3_cell_outlines (
    res smallint NOT NULL,
    cell bigint NOT NULL,
    geom geometry(Polygon, 3857) NOT NULL,
    PRIMARY KEY (res, cell)
) PARTITION BY LIST (res);
CREATE TABLE tiles.h3_cell_outlines_3 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (3);
CREATE TABLE tiles.h3_cell_outlines_4 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (4);
CREATE TABLE tiles.h3_cell_outlines_5 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (5);
CREATE TABLE tiles.h3_cell_outlines_6 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (6);
CREATE TABLE tiles.h3_cell_outlines_7 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (7);
CREATE TABLE tiles.h3_cell_outlines_8 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (8);
CREATE TABLE tiles.h3_cell_outlines_9 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (9);
CREATE TABLE tiles.h3_cell_outlines_10 PARTITION OF tiles.h3_cell_outlines FOR VALUES IN (10);
CREATE INDEX h3_cell_outlines_geom ON tiles.h3_cell_outlines USING gist (geom);

-- ### The change log and the queue of small writes

-- One row per created/changed/deleted incident, or one 'bulk' row (with the bounding box) for a
-- statement that touched more than tiles.bulk_threshold() incidents, such as a demo load. Its ids
-- are the change feed's event ids.
CREATE TABLE tiles.change_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind IN ('created', 'changed', 'deleted', 'bulk')),
    incident_id bigint,
    status text,
    lon double precision,
    lat double precision,
    -- The incident's grid and its ancestors: the polygons whose numbers changed.
    grid_ids integer[],
    bbox double precision[] CHECK (bbox IS NULL OR cardinality(bbox) = 4),
    count integer NOT NULL DEFAULT 1
);
CREATE INDEX change_events_at_idx ON tiles.change_events (at);

-- Small writes (filing one incident, one workflow step) do not update the rollups in their own
-- transaction: their trigger appends the signed incident states here, and tiles.fold_pending(),
-- called every 250 ms by each server process's change listener, folds them in. Concurrent
-- writers no longer queue on the few coarse rollup rows every incident touches.
CREATE TABLE tiles.pending_changes (
    id bigserial PRIMARY KEY,
    -- The change log entry this row becomes; NULL for the old state of an updated incident.
    kind text CHECK (kind IN ('created', 'changed', 'deleted')),
    -- +1 a state to add, -1 a state to subtract, 0 a change that moves no count.
    sign smallint NOT NULL CHECK (sign IN (-1, 0, 1)),
    incident_id bigint NOT NULL,
    geom geometry(Point, 4326) NOT NULL,
    grid_id integer NOT NULL,
    category_code text NOT NULL,
    status text NOT NULL,
    reported_at timestamptz NOT NULL,
    due_at timestamptz,
    closed_at timestamptz
);
