-- Incident categories, incidents with a timestamp per workflow step, and the event log.

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
    active boolean NOT NULL DEFAULT true
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

INSERT INTO categories (code, name_zh, name_en, group_code, time_limit, default_department_id,
                        default_priority, duplicate_radius_m, duplicate_window)
SELECT c.code, c.name_zh, c.name_en, c.group_code, c.time_limit::interval, d.id,
       c.priority, c.radius, c.win::interval
  FROM (VALUES
    ('safety_hazard',    '安全隐患', 'Safety hazard',      'safety',   '2 days',  'emergency',         'high',   100, '3 days'),
    ('straw_burning',    '秸秆焚烧', 'Straw burning',      'environment', '4 hours', 'agriculture',     'urgent', 500, '1 day'),
    ('sanitation',       '环境卫生', 'Sanitation',         'environment', '1 day',   'urban_management', 'normal', 100, '3 days'),
    ('dispute',          '矛盾纠纷', 'Dispute',            'social',   '5 days',  'justice',           'normal',  50, '7 days'),
    ('public_facility',  '公共设施', 'Public facility',    'facility', '3 days',  'housing',           'normal',  50, '7 days'),
    ('epidemic',         '疫情防控', 'Epidemic prevention', 'health',  '1 day',   'health',            'high',   200, '3 days'),
    ('resident_service', '民生服务', 'Resident service',   'social',   '3 days',  'civil_affairs',     'normal',  50, '7 days'),
    ('flood_geohazard',  '防汛地灾', 'Flood and geohazard', 'safety',  '6 hours', 'water',             'urgent', 300, '1 day')
  ) AS c(code, name_zh, name_en, group_code, time_limit, dept, priority, radius, win)
  JOIN departments d ON d.code = c.dept;

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
    status text NOT NULL DEFAULT 'reported'
        CHECK (status IN ('reported', 'accepted', 'rejected', 'dispatched', 'in_progress',
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
    CHECK (accepted_at IS NULL OR accepted_at >= reported_at),
    CHECK (rejected_at IS NULL OR rejected_at >= reported_at),
    CHECK (dispatched_at IS NULL OR dispatched_at >= reported_at),
    CHECK (resolved_at IS NULL OR resolved_at >= reported_at),
    CHECK (verified_at IS NULL OR verified_at >= reported_at),
    CHECK (closed_at IS NULL OR closed_at >= reported_at),
    CHECK ((rating IS NULL) = (rated_at IS NULL)),
    CHECK (duplicate_of IS NULL OR duplicate_of <> id)
);
CREATE INDEX incidents_geom_idx ON incidents USING gist (geom);
CREATE INDEX incidents_reported_at_idx ON incidents (reported_at);
CREATE INDEX incidents_grid_reported_idx ON incidents (grid_id, reported_at);
CREATE INDEX incidents_category_reported_idx ON incidents (category_code, reported_at);
CREATE INDEX incidents_open_due_idx ON incidents (due_at)
    WHERE status NOT IN ('closed', 'rejected');
CREATE INDEX incidents_department_idx ON incidents (department_id, status);

CREATE TABLE incident_events (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents (id),
    at timestamptz NOT NULL DEFAULT now(),
    actor_id integer REFERENCES users (id),
    action text NOT NULL CHECK (action ~ '^[a-z_]{2,40}$'),
    from_status text,
    to_status text,
    note text,
    data jsonb
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, at);

-- The event log is append-only: an event, once written, is history.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON incident_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
