-- The most overdue open cases at %(as_of)s inside the report's area: what a leader may read in a
-- meeting. No personal data: no reporter, no description, no exact location.
SELECT i.id, c.name_zh AS category, c.name_en AS category_en, i.status,
       g.name_zh AS grid, g.name_en AS grid_en, t.name_zh AS township, t.name_en AS township_en,
       d.name_zh AS department, d.name_en AS department_en,
       i.reported_at, i.due_at,
       round((date_part('epoch', %(as_of)s::timestamptz - i.due_at) / 3600.0)::numeric, 1)::float AS overdue_h
  FROM incidents i
  JOIN categories c ON c.code = i.category_code
  JOIN grids g ON g.id = i.grid_id
  LEFT JOIN grids t ON t.path = subpath(g.path, 0, 2) AND nlevel(g.path) >= 2
  LEFT JOIN departments d ON d.id = i.department_id
 WHERE i.status NOT IN ('closed', 'rejected')
   AND i.reported_at <= %(as_of)s
   AND i.due_at < %(as_of)s
   AND (%(area)s::text IS NULL OR g.path <@ (SELECT a.path FROM grids a WHERE a.code = %(area)s))
 ORDER BY i.due_at, i.id
 LIMIT %(limit)s
