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

function ringArea(ring) {
  let twice = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    twice += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  }
  return Math.abs(twice) / 2;
}

// A point inside the largest part of a (multi)polygon for its label: the middle of the widest
// stretch inside it along a few east-west lines. Not the centroid, which an L-shaped or crescent
// grid may not contain.
export function labelPoint(geometry) {
  const polygons = polygonsOf(geometry);
  if (polygons.length === 0) return null;
  const rings = polygons.reduce((best, next) => (ringArea(next[0]) > ringArea(best[0]) ? next : best));
  const lats = rings[0].map((position) => position[1]);
  const south = Math.min(...lats);
  const north = Math.max(...lats);
  let best = null;
  for (const share of [0.5, 0.35, 0.65, 0.2, 0.8]) {
    const lat = south + (north - south) * share;
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
      const width = crossings[k + 1] - crossings[k];
      if (!best || width > best.width) best = { width, lon: (crossings[k] + crossings[k + 1]) / 2, lat };
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
