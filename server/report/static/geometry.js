// Plane geometry on GeoJSON lon/lat, enough for a phone: is a point in a grid, where to put a
// grid's name, how far apart two fixes are. A grid is small, so lon/lat serve as plane coordinates.

const EARTH_RADIUS_M = 6_371_008.8;

function polygonsOf(geometry) {
  if (geometry?.type === "Polygon") return [geometry.coordinates];
  if (geometry?.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

// Even-odd crossing test over every ring, so holes count as outside.
function inPolygon(rings, lon, lat) {
  let inside = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

export function containsPoint(geometry, lon, lat) {
  return polygonsOf(geometry).some((rings) => inPolygon(rings, lon, lat));
}

// A point inside a (multi)polygon for its label: the middle of the widest stretch inside it along
// a few east-west lines. Not the centroid, which an L-shaped or crescent grid may not contain.
// With `bounds` ([west, south, east, north], e.g. the map's view) only what lies within them
// counts, so the name of a grid that fills the screen is where it can be seen; null when nothing
// of the polygon is within them.
export function labelPoint(geometry, bounds = [-180, -90, 180, 90]) {
  const [west, south, east, north] = bounds;
  let best = null;
  for (const rings of polygonsOf(geometry)) {
    const lats = rings[0].map((position) => position[1]);
    const low = Math.max(Math.min(...lats), south);
    const high = Math.min(Math.max(...lats), north);
    if (low >= high) continue;
    // From the lower third up: a label in the middle of the view would sit under the marker.
    for (const share of [0.3, 0.5, 0.7, 0.15, 0.85]) {
      const lat = low + (high - low) * share;
      const crossings = [];
      for (const ring of rings) {
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const [xi, yi] = ring[i];
          const [xj, yj] = ring[j];
          if (yi > lat !== yj > lat) crossings.push(((xj - xi) * (lat - yi)) / (yj - yi) + xi);
        }
      }
      crossings.sort((a, b) => a - b);
      for (let k = 0; k + 1 < crossings.length; k += 2) {
        const from = Math.max(crossings[k], west);
        const to = Math.min(crossings[k + 1], east);
        if (to > from && (!best || to - from > best.width)) {
          best = { width: to - from, lon: (from + to) / 2, lat };
        }
      }
    }
  }
  return best && [best.lon, best.lat];
}

// Great-circle distance in metres between two [lon, lat] positions.
export function distanceM([lon1, lat1], [lon2, lat2]) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}
