// A small map to move the report's point: MapLibre with no basemap (nothing leaves the intranet),
// only grid outlines from /api/v1/grids and a draggable marker. Without WebGL the page works on,
// with the phone's position alone.

const GRID_ZOOM = 13; // below this the view holds too many grids to be worth drawing
const OWN_GRID_FILL = "#f5c242";
const REMEMBERED_GRIDS = "gridwatch.report.grids";

function emptyCollection() {
  return { type: "FeatureCollection", features: [] };
}

function style() {
  return {
    version: 8,
    sources: { grids: { type: "geojson", data: emptyCollection() } },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#f4f1ea" } },
      {
        id: "own-grids",
        type: "fill",
        source: "grids",
        filter: ["==", ["get", "own"], true],
        paint: { "fill-color": OWN_GRID_FILL, "fill-opacity": 0.25 },
      },
      {
        id: "grid-outlines",
        type: "line",
        source: "grids",
        paint: { "line-color": "#1f4e79", "line-width": 1.5 },
      },
    ],
  };
}

function supportsWebGL() {
  try {
    return Boolean(document.createElement("canvas").getContext("webgl2"));
  } catch {
    return false;
  }
}

// Returns null when the map cannot be drawn here (no MapLibre, no WebGL).
// `ownGridCodes()` names the grids to highlight (the user's own, which change with a new login).
export function createPointMap(container, { ownGridCodes, onMove }) {
  if (!window.maplibregl || !supportsWebGL()) return null;
  container.hidden = false;
  const map = new maplibregl.Map({
    container,
    style: style(),
    center: [104.0, 30.0],
    zoom: 15,
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
  });
  map.touchZoomRotate.disableRotation();
  const marker = new maplibregl.Marker({ draggable: true, color: "#c0392b" });
  let placed = false;
  let gridRequest = null;

  function place(lon, lat) {
    marker.setLngLat([lon, lat]);
    if (!placed) {
      marker.addTo(map);
      placed = true;
    }
  }

  marker.on("dragend", () => {
    const { lng, lat } = marker.getLngLat();
    onMove(lng, lat);
  });
  map.on("click", (event) => {
    place(event.lngLat.lng, event.lngLat.lat);
    onMove(event.lngLat.lng, event.lngLat.lat);
  });

  async function loadGrids() {
    if (map.getZoom() < GRID_ZOOM || !navigator.onLine) return;
    const bounds = map.getBounds();
    const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map((value) => value.toFixed(6))
      .join(",");
    gridRequest?.abort();
    gridRequest = new AbortController();
    try {
      const response = await fetch(`/api/v1/grids?level=grid&bbox=${bbox}&simplify=0.00001&limit=500`, {
        signal: gridRequest.signal,
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const grids = await response.json();
      for (const feature of grids.features) feature.properties = { code: feature.properties.code };
      drawGrids(grids);
      try {
        localStorage.setItem(REMEMBERED_GRIDS, JSON.stringify(grids));
      } catch {
        // Storage full: the outlines are only a help.
      }
    } catch {
      // Offline or superseded by a newer view: keep the outlines already drawn.
    }
  }

  function drawGrids(grids) {
    const own = ownGridCodes();
    for (const feature of grids.features) feature.properties.own = own.includes(feature.properties.code);
    map.getSource("grids").setData(grids);
  }

  map.on("load", () => {
    // The outlines last seen, so a page opened without a connection still shows where grids run.
    const remembered = localStorage.getItem(REMEMBERED_GRIDS);
    if (remembered) drawGrids(JSON.parse(remembered));
    loadGrids();
  });
  map.on("moveend", loadGrids);

  return {
    // Puts the marker on the point; `follow` also centres the map on it.
    show(lon, lat, { follow }) {
      place(lon, lat);
      if (follow) map.jumpTo({ center: [lon, lat] });
    },
    // Shows a whole GeoJSON geometry, e.g. the inspector's grid when the phone has no position.
    fit(geometry) {
      const points = geometry.coordinates.flat(Infinity);
      const lons = points.filter((_, index) => index % 2 === 0);
      const lats = points.filter((_, index) => index % 2 === 1);
      map.fitBounds(
        [
          [Math.min(...lons), Math.min(...lats)],
          [Math.max(...lons), Math.max(...lats)],
        ],
        { padding: 10, animate: false },
      );
    },
    map,
  };
}
