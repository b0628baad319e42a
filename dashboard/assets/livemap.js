/* The live map of /dashboard/map: MapLibre GL JS (served by gridwatch from /vendor) drawing
 * gridwatch's own vector tiles, kept live by the change feed /api/v1/events.
 *
 * Dash calls these functions as clientside callbacks (dashboard/pages/map.py):
 *   applyMap     - creates the map in #live-map, or changes its tile URLs (filters) and layer
 *                  visibility in place, without reloading it;
 *   markOverdue  - rings the overdue incidents (feature state: the tiles carry no due time);
 *   followSelection - remembers the incident whose card is open, and flies there.
 * An event from the feed refetches only the tiles it touched at the shown zoom, then bumps the
 * Dash store `live-tick` (counters) and `card-refresh` when the open card's incident changed.
 */
(function () {
  "use strict";

  // Sources whose tiles take the category/status/period filters (the grids layer takes none).
  const FILTERED = ["incidents", "density"];
  const TILE_ZOOMS = [5, 18];
  const FLUSH_MS = 150;
  // Points (which can be ringed as overdue) are drawn from this zoom on (layers/catalog.py).
  const POINT_ZOOM = 15;

  // One live map per page; exposed for the browser tests and bench/dashboard.py.
  const live = {map: null, events: null, bases: {}, query: null, pending: [], timer: null,
                overdue: [], selected: null, config: null, labelSignature: null, view: null};
  window.gridwatchLive = live;

  function noUpdate() {
    return window.dash_clientside.no_update;
  }

  function filterQuery(filters) {
    const parts = [];
    for (const name of ["category", "status"]) {
      if (filters[name].length) {
        parts.push(name + "=" + filters[name].map(encodeURIComponent).join(","));
      }
    }
    if (filters.period) {
      parts.push("period=" + encodeURIComponent(filters.period));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function shifted(lon, lat) {
    // Over a GCJ-02 basemap everything is drawn shifted; fly to where the point is drawn.
    const shift = live.config && live.config.shift;
    return shift ? [lon + shift[0], lat + shift[1]] : [lon, lat];
  }

  function tileFraction(lon, lat, z) {
    const n = Math.pow(2, z);
    const clamped = Math.max(-85.05112878, Math.min(85.05112878, lat));
    const rad = clamped * Math.PI / 180;
    return [(lon + 180) / 360 * n, (1 - Math.asinh(Math.tan(rad)) / Math.PI) / 2 * n];
  }

  function addTilesOfBox(tiles, box, z) {
    // Polygons are drawn with a buffer beyond their tile: widen by 1/64 tile, as the server does.
    const margin = 1 / 64;
    const [x0, y0] = tileFraction(box[0], box[3], z);
    const [x1, y1] = tileFraction(box[2], box[1], z);
    const last = Math.pow(2, z) - 1;
    for (let x = Math.max(0, Math.floor(x0 - margin)); x <= Math.min(last, Math.floor(x1 + margin)); x++) {
      for (let y = Math.max(0, Math.floor(y0 - margin)); y <= Math.min(last, Math.floor(y1 + margin)); y++) {
        tiles.set(z + "/" + x + "/" + y, {z: z, x: x, y: y});
      }
    }
  }

  function addTile(tiles, text) {
    const [z, x, y] = text.split("/").map(Number);
    tiles.set(text, {z: z, x: x, y: y});
  }

  function refresh(sourceId, tiles) {
    if (tiles.size && live.map.getSource(sourceId)) {
      live.map.refreshTiles(sourceId, Array.from(tiles.values()));
    }
  }

  function flush() {
    live.timer = null;
    const events = live.pending.splice(0);
    const map = live.map;
    if (!map || !events.length) {
      return;
    }
    if (!document.body.contains(map.getContainer())) {
      destroy();  // the page was left
      return;
    }
    const z = Math.max(TILE_ZOOMS[0], Math.min(TILE_ZOOMS[1], Math.floor(map.getZoom())));
    const pointTiles = new Map();
    const gridTiles = new Map();
    for (const event of events) {
      if (event.kind === "bulk") {
        if (event.bbox) {
          addTilesOfBox(pointTiles, event.bbox, z);
          addTilesOfBox(gridTiles, event.bbox, z);
        }
        continue;
      }
      const tile = (event.tiles || []).find((text) => text.startsWith(z + "/"));
      if (tile) {
        addTile(pointTiles, tile);
      }
      if (event.grids_bbox) {
        addTilesOfBox(gridTiles, event.grids_bbox, z);
      }
    }
    refresh("incidents", pointTiles);
    refresh("density", pointTiles);
    refresh("grids", gridTiles);
    const last = events[events.length - 1].id;
    window.dash_clientside.set_props("live-tick", {data: last});
    if (live.selected !== null && events.some((event) => event.incident_id === live.selected)) {
      window.dash_clientside.set_props("card-refresh", {data: last});
    }
  }

  function listen() {
    const source = new EventSource("/api/v1/events");
    source.addEventListener("incident", (message) => {
      live.pending.push(JSON.parse(message.data));
      if (live.timer === null) {
        live.timer = setTimeout(flush, FLUSH_MS);
      }
    });
    live.events = source;
  }

  function destroy() {
    if (live.events) {
      live.events.close();
      live.events = null;
    }
    if (live.map) {
      live.map.remove();
      live.map = null;
    }
    live.pending = [];
    live.query = null;
    live.labelSignature = null;
    live.view = null;
  }

  function popupContent(lines) {
    const box = document.createElement("div");
    box.className = "gw-popup";
    for (const [index, text] of lines.entries()) {
      const line = document.createElement(index === 0 ? "strong" : "div");
      line.textContent = text;
      box.appendChild(line);
    }
    return box;
  }

  function describeGrid(properties, labels) {
    const lines = [properties.name];
    lines.push(labels.open + " " + (properties.open || 0) + " · " + labels.overdue + " " + (properties.overdue || 0));
    if ("member" in properties || "has_member" in properties) {
      lines.push(properties.member ? labels.member + " " + properties.member
                 : (properties.has_member ? labels.member : labels.no_member));
    }
    return lines;
  }

  function describeIncident(feature, config) {
    const properties = feature.properties;
    if ("count" in properties) {
      return [properties.count + " " + config.labels.incidents];
    }
    const category = config.categoryLabels[properties.category] || properties.category;
    return ["#" + feature.id + " " + category, config.statusLabels[properties.status] || properties.status,
            config.labels.age + " " + properties.age_h + " " + config.labels.hours];
  }

  function hoverPopups(map, config) {
    const popup = new maplibregl.Popup({closeButton: false, closeOnClick: false, maxWidth: "260px"});
    map.on("mousemove", (event) => {
      const features = map.queryRenderedFeatures(event.point, {
        layers: ["incident-points", "incident-cells", "grid-fill"].filter((id) => map.getLayer(id)
          && map.getLayoutProperty(id, "visibility") !== "none"),
      });
      if (!features.length) {
        popup.remove();
        map.getCanvas().style.cursor = "";
        return;
      }
      const feature = features[0];
      const lines = feature.layer.id === "grid-fill" ? describeGrid(feature.properties, config.labels)
        : describeIncident(feature, config);
      map.getCanvas().style.cursor = feature.layer.id === "grid-fill" ? "" : "pointer";
      popup.setLngLat(event.lngLat).setDOMContent(popupContent(lines)).addTo(map);
    });
    map.on("mouseout", () => popup.remove());
  }

  function placeLabels() {
    // One label per grid at the middle of its pieces in the loaded tiles, instead of one per tile
    // piece. Only re-set when the set of grids changes (setData renders, which ends in idle again).
    const map = live.map;
    if (!map || !map.getSource("grid-labels")) {
      return;
    }
    const boxes = new Map();
    for (const feature of map.querySourceFeatures("grids", {sourceLayer: "grids"})) {
      const box = boxes.get(feature.id) || {name: feature.properties.name, level: feature.properties.level,
                                            w: Infinity, s: Infinity, e: -Infinity, n: -Infinity};
      const rings = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates]
        : feature.geometry.coordinates;
      for (const polygon of rings) {
        for (const [lon, lat] of polygon[0]) {
          box.w = Math.min(box.w, lon); box.e = Math.max(box.e, lon);
          box.s = Math.min(box.s, lat); box.n = Math.max(box.n, lat);
        }
      }
      boxes.set(feature.id, box);
    }
    const signature = Array.from(boxes.keys()).sort().join(",") + "@" + Math.floor(map.getZoom());
    if (signature === live.labelSignature) {
      return;
    }
    live.labelSignature = signature;
    map.getSource("grid-labels").setData({
      type: "FeatureCollection",
      features: Array.from(boxes.values()).map((box) => ({
        type: "Feature",
        properties: {name: box.name, level: box.level},
        geometry: {type: "Point", coordinates: [(box.w + box.e) / 2, (box.s + box.n) / 2]},
      })),
    });
  }

  function reportView() {
    // The server lists the overdue incidents in view only when points are shown.
    const map = live.map;
    let view = null;
    if (map.getZoom() >= POINT_ZOOM) {
      const bounds = map.getBounds();
      view = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map(
        (value) => Math.round(value * 1e4) / 1e4);
    }
    if (JSON.stringify(view) !== JSON.stringify(live.view)) {
      live.view = view;
      window.dash_clientside.set_props("map-view", {data: view});
    }
  }

  function create(container, config, filters, switches) {
    destroy();
    live.config = config;
    const style = JSON.parse(JSON.stringify(config.style));
    live.query = filterQuery(filters);
    for (const [name, source] of Object.entries(style.sources)) {
      if (source.type === "vector") {
        live.bases[name] = window.location.origin + source.tiles[0];
        source.tiles = [live.bases[name] + (FILTERED.includes(name) ? live.query : "")];
      }
    }
    for (const layer of style.layers) {
      const visibility = layerVisibility(layer.id, switches, config.switches);
      if (visibility) {
        layer.layout = Object.assign({}, layer.layout, {visibility: visibility});
      }
    }
    const map = new maplibregl.Map({
      container: container,
      style: style,
      bounds: config.bounds,
      fitBoundsOptions: {padding: 24},
      minZoom: 5,
      maxZoom: 19,
      attributionControl: {compact: false},
      // A wall screen wants the new state, not a fade-in: every frame of fading is a frame to
      // draw (and on machines without a GPU a frame costs hundreds of milliseconds).
      fadeDuration: 0,
      renderWorldCopies: false,
    });
    live.map = map;
    map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-left");
    map.addControl(new maplibregl.ScaleControl(), "bottom-left");
    map.on("click", "incident-points", (event) => {
      // The incident id is the tile feature's id (not a property).
      window.dash_clientside.set_props("selected-incident", {data: event.features[0].id});
    });
    map.on("click", "incident-cells", (event) => {
      map.easeTo({center: event.lngLat, zoom: Math.min(map.getZoom() + 2, 16)});
    });
    hoverPopups(map, config);
    // Labels as soon as the grid tiles are in, while incident tiles may still be loading.
    map.on("sourcedata", (event) => {
      if (event.sourceId === "grids" && event.isSourceLoaded) {
        placeLabels();
      }
    });
    map.on("moveend", reportView);
    map.once("load", () => {
      applyOverdue();
      reportView();
      if (config.focus) {
        map.jumpTo({center: shifted(config.focus.lon, config.focus.lat), zoom: 16});
      }
    });
    listen();
  }

  function layerVisibility(layerId, switches, groups) {
    for (const [name, ids] of Object.entries(groups)) {
      if (ids.includes(layerId)) {
        return switches.includes(name) ? "visible" : "none";
      }
    }
    return null;
  }

  function update(filters, switches) {
    const map = live.map;
    const query = filterQuery(filters);
    if (query !== live.query) {
      live.query = query;
      for (const name of FILTERED) {
        map.getSource(name).setTiles([live.bases[name] + query]);
      }
    }
    for (const layer of map.getStyle().layers) {
      const visibility = layerVisibility(layer.id, switches, live.config.switches);
      if (visibility && map.getLayoutProperty(layer.id, "visibility") !== visibility) {
        map.setLayoutProperty(layer.id, "visibility", visibility);
      }
    }
  }

  function applyOverdue() {
    const map = live.map;
    // Not isStyleLoaded(): that is also false while any tile reloads (as after a live event).
    if (!map || !map.getSource("incidents")) {
      return;  // applied on load
    }
    const target = {source: "incidents", sourceLayer: "incidents"};
    map.removeFeatureState(target);
    for (const id of live.overdue) {
      map.setFeatureState(Object.assign({id: id}, target), {overdue: true});
    }
  }

  // Start MapLibre's worker (it parses the library again) while Dash is still rendering the page,
  // not when the map is created: the first tiles come that much sooner. Only on the map page.
  if (window.maplibregl && window.location.pathname.endsWith("/map")) {
    maplibregl.prewarm();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridwatch: {
      applyMap: function (config, category, periodKey, status, switches) {
        const container = document.getElementById("live-map");
        if (!container || !config || !window.maplibregl) {
          return noUpdate();
        }
        const filters = {
          category: (category || []).slice().sort(),
          status: (status || []).slice().sort(),
          period: config.periods[periodKey] || null,
        };
        if (!live.map || live.map.getContainer() !== container) {
          create(container, config, filters, switches || []);
        } else {
          update(filters, switches || []);
        }
        return noUpdate();
      },
      markOverdue: function (ids) {
        live.overdue = ids || [];
        applyOverdue();
        return noUpdate();
      },
      leavePage: function (pathname) {
        // Another page: close the map and its change feed (each feed holds a server thread).
        if (live.map && !(pathname || "").endsWith("/map")) {
          destroy();
        }
        return noUpdate();
      },
      followSelection: function (incidentId) {
        live.selected = incidentId === undefined ? null : incidentId;
        return noUpdate();
      },
    },
  });
})();
