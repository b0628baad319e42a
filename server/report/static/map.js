// A small map to move the report's point: MapLibre with no basemap (nothing leaves the intranet).
// What makes it readable is gridwatch's own grid tree, drawn as the live map draws it
// (dashboard/mapstyle.py): the outlines and names of townships (zoom 5-9), villages (10-12) or
// grids (13+), as in layers/catalog.py, GRID_LEVEL_ZOOMS. They come from GET /api/v1/grids for the
// view and are kept per level in localStorage, so a page opened without a connection still shows
// the last ones seen. The inspector's own grids (owngrids.js) are filled, outlined and named on
// top, and the track of a patrol under way (patrol.js) over them. Without WebGL the page works on,
// with the phone's position alone.

import { labelPoint } from "./geometry.js";

// The grid level the live map's tiles show at each zoom (layers/catalog.py, GRID_LEVEL_ZOOMS).
const LEVEL_ZOOMS = [
  ["township", 5, 9],
  ["village", 10, 12],
  ["grid", 13, 24],
];
const LABEL_SIZES = { township: 14, village: 12, grid: 11 };
// The live map's font stack: MapLibre draws the glyphs locally, so there is no glyph server.
const FONT_STACK = ["Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei"];
const OWN_GRID_FILL = "#f5c242";
const OWN_GRID_LINE = "#b7791f";
const REMEMBERED_GRIDS = "gridwatch.report.grids"; // + "." + level

function emptyCollection() {
  return { type: "FeatureCollection", features: [] };
}

function rememberedGrids(key) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? emptyCollection();
  } catch {
    return emptyCollection();
  }
}

function levelAt(zoom) {
  return LEVEL_ZOOMS.find(([, first, last]) => first <= zoom && zoom <= last)?.[0] ?? null;
}

function labelLayer(id, source, { size, color, haloWidth }) {
  return {
    id,
    type: "symbol",
    source,
    layout: {
      "text-field": ["get", "name"],
      "text-font": FONT_STACK,
      "text-size": size,
      "text-max-width": 8,
    },
    paint: { "text-color": color, "text-halo-color": "#ffffff", "text-halo-width": haloWidth },
  };
}

function style() {
  return {
    version: 8,
    sources: {
      grids: { type: "geojson", data: emptyCollection() },
      labels: { type: "geojson", data: emptyCollection() },
      own: { type: "geojson", data: emptyCollection() },
      ownLabels: { type: "geojson", data: emptyCollection() },
      track: { type: "geojson", data: emptyCollection() },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#f4f1ea" } },
      {
        id: "own-grids",
        type: "fill",
        source: "own",
        paint: { "fill-color": OWN_GRID_FILL, "fill-opacity": 0.25 },
      },
      {
        id: "grid-outlines",
        type: "line",
        source: "grids",
        paint: {
          "line-color": "#4a5866",
          "line-width": ["match", ["get", "level"], "township", 2, "village", 1.5, 1.2],
        },
      },
      {
        id: "own-outlines",
        type: "line",
        source: "own",
        paint: { "line-color": OWN_GRID_LINE, "line-width": 3 },
      },
      {
        id: "track",
        type: "line",
        source: "track",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": "#1f6feb", "line-width": 4, "line-opacity": 0.85 },
      },
      labelLayer("place-labels", "labels", {
        size: ["match", ["get", "level"], ...Object.entries(LABEL_SIZES).flat(), LABEL_SIZES.grid],
        color: "#27323d",
        haloWidth: 1.5,
      }),
      // Named from zoom 13, where grids are named; further out village and township names come first.
      { ...labelLayer("own-labels", "ownLabels", { size: 13, color: "#6b4300", haloWidth: 2 }), minzoom: 13 },
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

// Returns null when the map cannot be drawn here (no MapLibre, no WebGL). `nameOf(properties)`
// gives a grid's name in the page's language, from `name_zh` and `name_en`.
export function createPointMap(container, { nameOf, onMove }) {
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
  window.gridwatchReportMap = map; // for the browser tests and for debugging
  map.touchZoomRotate.disableRotation();
  const marker = new maplibregl.Marker({ draggable: true, color: "#c0392b" });
  let placed = false;
  let loaded = false; // the style: sources can take data
  let gridRequest = null;
  let grids = emptyCollection();
  let drawnLevel = null;
  let own = [];
  let track = [];

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

  // One name per grid, inside the part of it in view (a little in from the edges): with only
  // outlines to go by, the name of the grid one stands in must be on the screen.
  function labelsInView(features, nameProperties) {
    const bounds = map.getBounds();
    const inset = [
      (bounds.getEast() - bounds.getWest()) * 0.08,
      (bounds.getNorth() - bounds.getSouth()) * 0.08,
    ];
    const view = [
      bounds.getWest() + inset[0],
      bounds.getSouth() + inset[1],
      bounds.getEast() - inset[0],
      bounds.getNorth() - inset[1],
    ];
    const labels = [];
    for (const feature of features) {
      const point = labelPoint(feature.geometry, view);
      if (!point) continue;
      const properties = { name: nameOf(nameProperties(feature)), level: feature.properties?.level };
      labels.push({ type: "Feature", properties, geometry: { type: "Point", coordinates: point } });
    }
    return { type: "FeatureCollection", features: labels };
  }

  function drawLabels() {
    if (!loaded) return;
    const ownCodes = new Set(own.map((grid) => grid.code));
    // The own grids carry their names in a layer of their own, drawn (and placed) first.
    const others = grids.features.filter((feature) => !ownCodes.has(feature.properties.code));
    map.getSource("labels").setData(labelsInView(others, (feature) => feature.properties));
    const ownFeatures = own.map((grid) => ({ geometry: grid.geometry, properties: { level: "own" }, grid }));
    map.getSource("ownLabels").setData(labelsInView(ownFeatures, (feature) => feature.grid));
  }

  function drawGrids(collection, level) {
    grids = collection;
    drawnLevel = level;
    map.getSource("grids").setData(grids);
    drawLabels();
  }

  async function loadGrids() {
    if (!loaded) return;
    const level = levelAt(Math.floor(map.getZoom()));
    if (!level) return drawGrids(emptyCollection(), null);
    const remembered = `${REMEMBERED_GRIDS}.${level}`;
    if (level !== drawnLevel) {
      // Another level than the one drawn: start from the last seen of this one.
      drawGrids(rememberedGrids(remembered), level);
    } else {
      drawLabels(); // the names move into the new view
    }
    if (!navigator.onLine) return;
    const bounds = map.getBounds();
    const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map((value) => value.toFixed(6))
      .join(",");
    // About half a pixel: finer detail than that cannot be seen.
    const simplify = Math.min(0.1, Math.max(1e-7, 180 / 512 / 2 ** map.getZoom())).toPrecision(2);
    gridRequest?.abort();
    gridRequest = new AbortController();
    try {
      const response = await fetch(
        `/api/v1/grids?level=${level}&bbox=${bbox}&simplify=${simplify}&limit=500`,
        { signal: gridRequest.signal, credentials: "same-origin" },
      );
      if (!response.ok) return;
      const found = await response.json();
      for (const feature of found.features) {
        const { code, name_zh, name_en } = feature.properties;
        feature.properties = { code, level, name_zh, name_en };
      }
      drawGrids(found, level);
      try {
        localStorage.setItem(remembered, JSON.stringify(found));
      } catch {
        // Storage full: the outlines are only a help.
      }
    } catch {
      // Offline or superseded by a newer view: keep the outlines already drawn.
    }
  }

  map.on("load", () => {
    loaded = true;
    localStorage.removeItem(REMEMBERED_GRIDS); // outlines without names, as kept before
    setOwn(own);
    setTrack(track);
    loadGrids();
  });
  map.on("moveend", loadGrids);

  function setOwn(ownGrids) {
    own = ownGrids;
    if (!loaded) return; // drawn on load
    map.getSource("own").setData({
      type: "FeatureCollection",
      features: own.map((grid) => ({
        type: "Feature",
        properties: { code: grid.code },
        geometry: grid.geometry,
      })),
    });
    drawLabels();
  }

  function setTrack(positions) {
    track = positions;
    if (!loaded) return; // drawn on load
    const line = { type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: track } };
    map.getSource("track").setData({ type: "FeatureCollection", features: track.length < 2 ? [] : [line] });
    // Walking out of the view brings the view along.
    const last = track.at(-1);
    if (last && !map.getBounds().contains(last)) map.jumpTo({ center: last });
  }

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
    // The inspector's grids ({code, name_zh, name_en, geometry}): filled, outlined and named.
    setOwnGrids: setOwn,
    // The track of the patrol under way ([lon, lat] positions; none: no patrol).
    showTrack: setTrack,
    // Names again, in the page's language after a switch.
    relabel: drawLabels,
    map,
  };
}
