/* The live map of /dashboard/map: MapLibre GL JS (served by gridwatch from /vendor) drawing
 * gridwatch's own vector tiles, kept live by the change feed /api/v1/events.
 *
 * On the map page this script starts the map itself: it fetches the map's config
 * (/dashboard/map/config, dashboard/mapconfig.py) while Dash starts, and creates the map the
 * moment Dash puts #live-map in the page, before Dash runs the page's callbacks. The filters and
 * the view live in the page's URL (?category=&status=&period=&view=lon,lat,zoom), so a reload
 * or a shared link opens the same map.
 *
 * Dash calls these functions as clientside callbacks (dashboard/pages/map.py):
 *   applyMap     - creates the map in #live-map if it is not there yet, or changes its tile
 *                  URLs (filters) and layer visibility in place, without reloading it;
 *   markOverdue  - rings the overdue incidents (feature state: the tiles carry no due time);
 *   followSelection - remembers the incident whose card is open;
 *   urlFilters   - the shell's category and period as a link gives them;
 *   leavePage    - closes the map and its feed on another page.
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
  const CONFIG_URL = "/dashboard/map/config";
  const MAX_DEFER_MS = 1000;

  // One live map per page; exposed for the browser tests and bench/dashboard.py.
  // dashReady: the page's Dash stores exist (set_props on a missing store is an error).
  const live = {map: null, events: null, bases: {}, query: null, pending: [], timer: null,
                overdue: [], selected: null, config: null, configLoad: null, view: null,
                state: null, switches: [], styleReady: false, dashReady: false, holdFrame: null,
                ringed: ""};
  window.gridwatchLive = live;

  function onMapPage() {
    return /\/map\/?$/.test(window.location.pathname);
  }

  function listParam(params, name) {
    const value = params.get(name);
    return value ? value.split(",").filter(Boolean).sort() : [];
  }

  function stateFromUrl() {
    // A link that carries the filters carries all of them (period is always written).
    const params = new URLSearchParams(window.location.search);
    const view = (params.get("view") || "").split(",").map(Number);
    return {
      filters: params.has("period") ? {category: listParam(params, "category"),
                                       status: listParam(params, "status"),
                                       periodKey: params.get("period")} : null,
      view: view.length === 3 && view.every(Number.isFinite) ? {center: [view[0], view[1]], zoom: view[2]}
        : null,
    };
  }

  function syncUrl() {
    // Keeps the filters and the view in the address bar (no history entry, no Dash navigation).
    if (!live.map || !live.state || !onMapPage()) {
      return;
    }
    const params = new URLSearchParams(window.location.search);
    for (const name of ["category", "status", "period", "view"]) {
      params.delete(name);  // written again below, always in this order
    }
    for (const name of ["category", "status"]) {
      if (live.state[name].length) {
        params.set(name, live.state[name].join(","));
      }
    }
    params.set("period", live.state.periodKey || "all");
    const centre = live.map.getCenter();
    params.set("view", [centre.lng.toFixed(5), centre.lat.toFixed(5), live.map.getZoom().toFixed(2)].join(","));
    const search = "?" + params.toString().replace(/%2C/g, ",");
    if (search !== window.location.search) {
      window.history.replaceState(window.history.state, "", window.location.pathname + search);
    }
  }

  function loadConfig() {
    // One request per language and linked incident; the early start and Dash share it.
    const asked = new URLSearchParams(window.location.search);
    const params = new URLSearchParams();
    for (const name of ["lang", "incident"]) {
      if (asked.get(name)) {
        params.set(name, asked.get(name));
      }
    }
    const key = params.toString();
    if (!live.configLoad || live.configLoad.key !== key) {
      const load = {key: key};
      load.promise = fetch(CONFIG_URL + "?" + key, {credentials: "same-origin"})
        .then((response) => (response.ok ? response.json() : null))
        .then((config) => {
          if (!config && live.configLoad === load) {
            live.configLoad = null;  // not signed in (yet): ask again next time
          }
          return config;
        });
      live.configLoad = load;
    }
    return live.configLoad.promise;
  }

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
    const densityTiles = new Map();
    const gridTiles = new Map();
    let bulk = false;
    for (const event of events) {
      if (event.kind === "bulk") {
        bulk = true;
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
      // A heatmap hexagon may cross into the neighbouring tiles: "z/x/y" or a row "z/x0-x1/y".
      for (const text of event.density_tiles || []) {
        if (text.startsWith(z + "/")) {
          const [, xs, y] = text.split("/");
          const [first, last] = xs.split("-").map(Number);
          for (let x = first; x <= (last === undefined ? first : last); x++) {
            addTile(densityTiles, z + "/" + x + "/" + y);
          }
        }
      }
      if (event.grids_bbox) {
        addTilesOfBox(gridTiles, event.grids_bbox, z);
      }
    }
    refresh("incidents", pointTiles);
    if (bulk && map.getSource("density")) {
      // Hexagons reach beyond a bulk change's bbox by up to their size: reload the heatmap.
      map.getSource("density").setTiles(map.getSource("density").tiles);
    } else {
      refresh("density", densityTiles);
    }
    refresh("grids", gridTiles);
    if (!live.dashReady) {
      return;  // Dash reads the counters itself when it renders the page
    }
    const last = events[events.length - 1].id;
    window.dash_clientside.set_props("live-tick", {data: last});
    if (live.selected !== null && events.some((event) => event.incident_id === live.selected)) {
      window.dash_clientside.set_props("card-refresh", {data: last});
    }
  }

  // The change feed, shared by every tab of this browser through a SharedWorker
  // (server/feed/static/worker.js): a browser keeps at most six connections to a host, and a
  // stream per tab would leave the seventh tab waiting. The result behaves as an EventSource
  // for what this file uses (readyState, close, "incident" listeners). Without SharedWorker
  // (some phones), a stream of its own. The feed answers on its own port (server/feed): the
  // login cookie goes along by CORS.
  function openFeed(url, viewer) {
    if (typeof SharedWorker === "undefined") {
      return new EventSource(url, {withCredentials: true});
    }
    const worker = new SharedWorker("/feed/worker.js", {name: "gridwatch-feed " + viewer});
    const listeners = [];
    const feed = {
      readyState: 0,
      addEventListener(type, handler) {
        if (type === "incident") {
          listeners.push(handler);
        }
      },
      close() {
        worker.port.postMessage({type: "close"});
        worker.port.close();
        feed.readyState = 2;
      },
    };
    worker.port.onmessage = (message) => {
      if (message.data.type === "state") {
        feed.readyState = message.data.readyState;
      } else if (message.data.type === "incident") {
        for (const handler of listeners) {
          handler({data: message.data.data, lastEventId: message.data.id});
        }
      }
    };
    worker.port.start();
    worker.port.postMessage({type: "open", url: url});
    window.addEventListener("pagehide", () => worker.port.postMessage({type: "close"}));
    return feed;
  }

  function listen(url, viewer) {
    const source = openFeed(url, viewer);
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
      const holder = live.map.getContainer();
      live.map.remove();
      holder.remove();
      live.map = null;
    }
    live.pending = [];
    live.query = null;
    live.view = null;
    live.ringed = "";
    live.dashReady = false;
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

  function reportView() {
    // The server lists the overdue incidents in view only when points are shown.
    const map = live.map;
    let view = null;
    if (map.getZoom() >= POINT_ZOOM) {
      const bounds = map.getBounds();
      view = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map(
        (value) => Math.round(value * 1e4) / 1e4);
    }
    if (live.dashReady && JSON.stringify(view) !== JSON.stringify(live.view)) {
      live.view = view;
      window.dash_clientside.set_props("map-view", {data: view});
    }
  }

  function filtersFor(state, config) {
    return {category: state.category, status: state.status, period: config.periods[state.periodKey] || null};
  }

  function create(holder, config, state, switches, view) {
    destroy();
    live.config = config;
    live.state = state;
    live.switches = switches;
    live.styleReady = false;
    const style = JSON.parse(JSON.stringify(config.style));
    live.query = filterQuery(filtersFor(state, config));
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
    const focus = !view && config.focus;
    const map = new maplibregl.Map(Object.assign({
      container: holder,
      style: style,
      minZoom: 5,
      maxZoom: 19,
      attributionControl: {compact: false},
      // A wall screen wants the new state, not a fade-in: every frame of fading is a frame to
      // draw (and on machines without a GPU a frame costs a hundred milliseconds and more).
      fadeDuration: 0,
      renderWorldCopies: false,
    }, view ? {center: view.center, zoom: view.zoom}
      : focus ? {center: shifted(focus.lon, focus.lat), zoom: 16}
        : {bounds: config.bounds, fitBoundsOptions: {padding: 24}}));
    live.map = map;
    drawWhenTilesAreIn(map);
    map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-left");
    map.addControl(new maplibregl.ScaleControl(), "bottom-left");
    map.on("click", "incident-points", (event) => {
      // The incident id is the tile feature's id (not a property).
      if (live.dashReady) {
        window.dash_clientside.set_props("selected-incident", {data: event.features[0].id});
      }
    });
    map.on("click", "incident-cells", (event) => {
      map.easeTo({center: event.lngLat, zoom: Math.min(map.getZoom() + 2, 16)});
    });
    hoverPopups(map, config);
    map.on("moveend", () => {
      reportView();
      syncUrl();
    });
    map.once("style.load", () => {
      live.styleReady = true;
      applyState();  // what Dash asked for while the style was loading
    });
    map.once("load", () => {
      applyOverdue();
      reportView();
    });
    listen(config.events, config.viewer);
  }

  function drawWhenTilesAreIn(map) {
    // With the camera still, draw once every tile of the view is in rather than after each one:
    // where WebGL runs on the CPU a frame of a wall screen costs 100 ms and more, and a frame
    // with half the tiles of a new filter shows a mix of old and new. A frame at least every
    // MAX_DEFER_MS; a moving camera, and a source whose data has just arrived for the first time
    // (it requests its tiles when drawn), draw at once.
    const repaint = map.triggerRepaint.bind(map);
    let deferred = null;
    const now = () => {
      clearTimeout(deferred);
      deferred = null;
      repaint();
    };
    let held = false;
    map.triggerRepaint = () => {
      if (!held && (!map.style || map.isMoving() || map.areTilesLoaded())) {
        now();
      } else if (deferred === null) {
        deferred = setTimeout(now, MAX_DEFER_MS);
      }
    };
    // setTiles asks for a frame before its tiles start reloading: hold it until they have.
    live.holdFrame = () => {
      held = true;
      setTimeout(() => {
        held = false;
      }, 0);
    };
    const started = new Set();
    map.on("sourcedata", (event) => {
      if (event.sourceDataType === "metadata" && !started.has(event.sourceId)) {
        // A source's first tiles are asked for when a frame is drawn; setTiles reloads its own.
        started.add(event.sourceId);
        now();
      }
    });
  }

  function createIn(container, config, state, switches, view) {
    const holder = document.createElement("div");
    holder.className = "gw-map-holder";
    container.appendChild(holder);
    create(holder, config, state, switches, view);
  }

  function createOnceRendered() {
    // Creates the map the moment Dash puts #live-map in the page, with the link's filters and
    // view, before Dash has run the page's callbacks; applyMap then finds it there.
    const observer = new MutationObserver(() => {
      const container = document.getElementById("live-map");
      if (!container) {
        return;
      }
      observer.disconnect();
      loadConfig().then((config) => {
        if (config && !live.map && document.body.contains(container)) {
          const state = stateFromUrl();
          const filters = state.filters || {category: [], status: [], periodKey: "all"};
          createIn(container, config, filters, config.defaultSwitches, state.view);
        }
      });
    });
    observer.observe(document.body, {childList: true, subtree: true});
  }

  function layerVisibility(layerId, switches, groups) {
    for (const [name, ids] of Object.entries(groups)) {
      if (ids.includes(layerId)) {
        return switches.includes(name) ? "visible" : "none";
      }
    }
    return null;
  }

  function update(state, switches) {
    live.state = state;
    live.switches = switches;
    if (live.styleReady) {
      applyState();
    }  // else on "style.load": the map may be created a moment before Dash calls this
  }

  function applyState() {
    const map = live.map;
    const query = filterQuery(filtersFor(live.state, live.config));
    if (query !== live.query) {
      live.query = query;
      live.holdFrame();
      for (const name of FILTERED) {
        map.getSource(name).setTiles([live.bases[name] + query]);
      }
    }
    for (const layer of live.config.style.layers) {
      const visibility = layerVisibility(layer.id, live.switches, live.config.switches);
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
    // Each change of feature state costs a frame (and map.loaded() is false until it is drawn):
    // change nothing when the rings stay as they are, as on most counter ticks and at county zoom.
    const ringed = live.overdue.slice().sort((a, b) => a - b).join(",");
    if (ringed === live.ringed) {
      return;
    }
    const target = {source: "incidents", sourceLayer: "incidents"};
    map.removeFeatureState(target);
    for (const id of live.overdue) {
      map.setFeatureState(Object.assign({id: id}, target), {overdue: true});
    }
    live.ringed = ringed;
  }

  // On the map page, start at once: MapLibre's worker and the config load while Dash is still
  // fetching its layout, and the map is created as soon as its container exists.
  if (window.maplibregl && onMapPage()) {
    maplibregl.prewarm();
    loadConfig();
    createOnceRendered();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridwatch: {
      applyMap: function (category, periodKey, status, switches) {
        const container = document.getElementById("live-map");
        if (!container || !window.maplibregl) {
          return noUpdate();
        }
        const state = {category: (category || []).slice().sort(), status: (status || []).slice().sort(),
                       periodKey: periodKey};
        loadConfig().then((config) => {
          if (!config || !document.body.contains(container)) {
            return;
          }
          if (live.map && live.config === config && live.map.getContainer().parentNode === container) {
            update(state, switches || []);
          } else {
            createIn(container, config, state, switches || [], stateFromUrl().view);
          }
          live.dashReady = true;
          reportView();
          syncUrl();
        });
        return noUpdate();
      },
      urlFilters: function (filters) {
        // A link with the filters sets the shell's (kept for the tab) to them.
        if (!filters) {
          return [noUpdate(), noUpdate()];
        }
        return [filters.category, filters.period];
      },
      markOverdue: function (ids) {
        live.overdue = ids || [];
        applyOverdue();
        return noUpdate();
      },
      leavePage: function (pathname) {
        // Another page: close the map and its change feed (each feed holds a server thread).
        if (live.map && !/\/map\/?$/.test(pathname || "")) {
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
