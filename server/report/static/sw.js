// The service worker of /report: keeps the page shell (HTML, scripts, styles, MapLibre) so the
// page opens without a connection. Reports themselves wait in IndexedDB (outbox.js), not here.
//
// Shell files are fetched network-first, so a connected phone always runs the current version,
// with a short timeout before falling back to the kept copy, so a phone on a weak signal does
// not wait for a request that will not come back. API calls are never answered from here.

const CACHE = "gridwatch-report-shell-v1";
const NETWORK_TIMEOUT_MS = 4000;
const SHELL = [
  "/report",
  "/report/static/report.js",
  "/report/static/common.js",
  "/report/static/session.js",
  "/report/static/position.js",
  "/report/static/form.js",
  "/report/static/queue.js",
  "/report/static/recent.js",
  "/report/static/owngrids.js",
  "/report/static/geometry.js",
  "/report/static/patrol.js",
  "/report/static/i18n.js",
  "/report/static/outbox.js",
  "/report/static/map.js",
  "/report/static/api.js",
  "/report/static/photo.js",
  "/report/static/report.css",
  "/report/static/icon.svg",
  "/report/static/manifest.webmanifest",
  "/vendor/maplibre-gl/maplibre-gl.js",
  "/vendor/maplibre-gl/maplibre-gl.css",
];
const SHELL_PATHS = new Set(SHELL);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  // `/report?lang=en` is the same page as `/report`: keep one copy.
  const key = new URL(request.url).pathname;
  const fromNetwork = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(key, response.clone());
    return response;
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, NETWORK_TIMEOUT_MS));
  // No connection (a failed fetch) and no answer in time both fall back to the kept copy.
  const response = await Promise.race([fromNetwork.catch(() => null), timeout]);
  if (response) return response;
  const kept = await cache.match(key);
  // No copy yet (first visit without a connection): wait for the network after all.
  return kept ?? fromNetwork;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const shellFile = url.origin === self.location.origin && SHELL_PATHS.has(url.pathname);
  if (event.request.method !== "GET" || !shellFile) return;
  event.respondWith(networkFirst(event.request));
});
