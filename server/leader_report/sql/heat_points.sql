-- Incidents of the given categories received in the period inside the report's area, counted per
-- cell of a 0.002° grid (about 200 m): the heatmap's points, small whatever the month holds.
SELECT round(ST_Y(ST_Centroid(ST_Collect(i.geom)))::numeric, 5)::float AS lat,
       round(ST_X(ST_Centroid(ST_Collect(i.geom)))::numeric, 5)::float AS lon,
       count(*) AS n
  FROM incidents i
  JOIN grids g ON g.id = i.grid_id
 WHERE i.reported_at >= %(starts_at)s AND i.reported_at < %(ends_at)s AND i.reported_at <= %(as_of)s
   AND i.category_code = ANY (%(categories)s)
   AND (%(area)s::text IS NULL OR g.path <@ (SELECT a.path FROM grids a WHERE a.code = %(area)s))
 GROUP BY ST_SnapToGrid(i.geom, 0.002)
