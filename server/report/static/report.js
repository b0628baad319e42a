// The inspector's phone page: sign in, take the position, fill the report, and hand it to the
// outbox, which sends it now or when the phone is next online (docs/report-page.md).

import { API, errorOf, postReport } from "./api.js";
import { chooseLanguage, statusName, translator } from "./i18n.js";
import { createPointMap } from "./map.js";
import { listReports, newIdempotencyKey, removeReport, saveReport } from "./outbox.js";
import { MAX_PHOTO_BYTES, fitPhoto } from "./photo.js";

const ACCURACY_WARNING_M = 50;
const RETRY_EVERY_MS = 30_000; // also retry when the server, not the phone, was unreachable
const RECENT_SHOWN = 20;
// What the page keeps in localStorage for a start without a connection.
const REMEMBERED = {
  me: "gridwatch.report.me",
  categories: "gridwatch.report.categories",
  recent: "gridwatch.report.recent",
};

const $ = (selector) => document.querySelector(selector);

const state = {
  language: chooseLanguage(),
  t: null,
  me: null,
  csrf: null,
  categories: [],
  recent: [],
  recentOffline: false,
  point: null, // {lon, lat, accuracy, source: "gps" | "map"}
  positionNote: "locating", // shown while there is no point: locating, no_position, no_geolocation
  map: null,
  flushing: null,
  flushAgain: false,
  started: false,
  sending: new Set(),
};
state.t = translator(state.language);

// -- small helpers ------------------------------------------------------------------------------

function remember(name, value) {
  if (value === null) localStorage.removeItem(REMEMBERED[name]);
  else localStorage.setItem(REMEMBERED[name], JSON.stringify(value));
}

function recall(name) {
  try {
    return JSON.parse(localStorage.getItem(REMEMBERED[name]));
  } catch {
    return null;
  }
}

function element(tag, { text, className } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  node.append(...children);
  return node;
}

function showMessage(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

function localTime(iso) {
  return new Date(iso).toLocaleString(state.language === "zh" ? "zh-CN" : "en-GB", {
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

function categoryName(code) {
  const category = state.categories.find((item) => item.code === code);
  if (!category) return code;
  return state.language === "zh" ? category.name_zh : category.name_en;
}

// -- language -----------------------------------------------------------------------------------

function applyLanguage() {
  const { t } = state;
  document.documentElement.lang = state.language === "zh" ? "zh-CN" : "en";
  document.title = `${t("title")} · gridwatch`;
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
  for (const button of document.querySelectorAll("[data-language]")) {
    button.setAttribute("aria-pressed", String(button.dataset.language === state.language));
  }
  renderConnection();
  renderCategories();
  renderPoint();
  renderRecent();
  renderQueue();
}

function switchLanguage(language) {
  state.language = language;
  state.t = translator(language);
  const url = new URL(location.href);
  url.searchParams.set("lang", language);
  history.replaceState(null, "", url); // a bookmark or reload keeps the choice
  applyLanguage();
}

// -- who is reporting ---------------------------------------------------------------------------

// The caller from the server, or (offline) as last seen; null when nobody is logged in.
async function loadMe() {
  if (!navigator.onLine) return recall("me");
  let response;
  try {
    response = await fetch(`${API}/users/me`, { credentials: "same-origin" });
  } catch {
    return recall("me");
  }
  if (response.status === 401) {
    remember("me", null);
    return null;
  }
  if (!response.ok) return recall("me"); // the server is down, not the session
  const me = await response.json();
  state.csrf = me.csrf_token ?? null;
  delete me.csrf_token;
  remember("me", me);
  return me;
}

function showLogin() {
  state.me = null;
  $("#reporter").hidden = true;
  $("#login").hidden = false;
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  const errorNode = $("#login-error");
  showMessage(errorNode, "");
  let response;
  try {
    response = await fetch(`${API}/auth/login`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
    });
  } catch {
    showMessage(errorNode, state.t("login_needs_network"), "error");
    return;
  }
  if (!response.ok) {
    showMessage(errorNode, `${state.t("login_failed")}: ${(await errorOf(response)).message}`, "error");
    return;
  }
  const body = await response.json();
  state.csrf = body.csrf_token;
  form.password.value = "";
  remember("me", body.user);
  await start(body.user);
}

async function logout() {
  try {
    await fetch(`${API}/auth/logout`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": state.csrf ?? "" },
    });
  } catch {
    // Offline: forget the user here; the server session simply expires.
  }
  stopFollowing();
  state.csrf = null;
  state.recent = [];
  remember("me", null);
  remember("recent", null);
  showLogin();
}

// -- position -----------------------------------------------------------------------------------

function setPoint(point, { follow }) {
  state.point = point;
  state.map?.show(point.lon, point.lat, { follow });
  renderPoint();
}

function renderPoint() {
  const { t, point } = state;
  const text = $("#position-text");
  const warning = $("#accuracy-warning");
  if (!point) {
    text.textContent = t(state.positionNote);
    warning.hidden = true;
    return;
  }
  const where = `${point.lat.toFixed(6)}, ${point.lon.toFixed(6)}`;
  if (point.source === "map") {
    text.textContent = `${where} · ${t("moved")}`;
    warning.hidden = true;
    return;
  }
  const accuracy = Math.round(point.accuracy);
  text.textContent = `${where} · ${t("accuracy", { m: accuracy })}`;
  const poor = point.accuracy > ACCURACY_WARNING_M;
  showMessage(warning, poor ? t("accuracy_warning", { m: accuracy }) : "", "warning");
}

let lastFix = null;
let firstFix = true;

function watchPosition() {
  if (!("geolocation" in navigator)) {
    state.positionNote = "no_geolocation";
    renderPoint();
    centreOnOwnGrid();
    return;
  }
  navigator.geolocation.watchPosition(
    (position) => {
      const { longitude, latitude, accuracy } = position.coords;
      lastFix = { lon: longitude, lat: latitude, accuracy, source: "gps" };
      // A point moved by hand stays where the inspector put it until they ask for the GPS again.
      if (state.point?.source !== "map") {
        setPoint(lastFix, { follow: firstFix });
        firstFix = false;
      }
    },
    () => {
      if (!state.point) {
        state.positionNote = "no_position";
        renderPoint();
        centreOnOwnGrid();
      }
    },
    { enableHighAccuracy: true, maximumAge: 10_000, timeout: 30_000 },
  );
}

function useGps() {
  if (lastFix) setPoint(lastFix, { follow: true });
}

async function centreOnOwnGrid() {
  const code = state.me?.grids?.[0];
  if (!state.map || !code || !navigator.onLine) return;
  try {
    const response = await fetch(`${API}/grids/${encodeURIComponent(code)}?simplify=0.00001`, {
      credentials: "same-origin",
    });
    if (response.ok) state.map.fit((await response.json()).geometry);
  } catch {
    // Offline: the inspector can still pan the map by hand.
  }
}

// -- categories ---------------------------------------------------------------------------------

async function loadCategories() {
  try {
    if (!navigator.onLine) throw new Error("offline");
    const response = await fetch(`${API}/categories`, { credentials: "same-origin" });
    if (!response.ok) throw new Error((await errorOf(response)).message);
    state.categories = (await response.json()).categories.filter((category) => category.active);
    remember("categories", state.categories);
  } catch {
    state.categories = recall("categories") ?? [];
  }
  renderCategories();
}

function renderCategories() {
  const select = $("#category");
  const chosen = select.value;
  const options = [element("option", { text: state.t("choose_category") })];
  options[0].value = "";
  for (const category of state.categories) {
    const option = element("option", { text: state.language === "zh" ? category.name_zh : category.name_en });
    option.value = category.code;
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = chosen;
}

// -- the outbox ---------------------------------------------------------------------------------

// Sends one report; see postReport for the outcomes. Only a confirmed filing leaves the outbox.
async function send(report) {
  const { outcome, incident, message } = await postReport(report, { csrf: state.csrf });
  if (outcome === "sent") {
    await removeReport(report.key);
    rememberRecent(incident, report.key);
  } else if (outcome === "refused") {
    await saveReport({ ...report, state: "refused", error: message });
  }
  return outcome;
}

// Sends the current user's waiting reports, oldest first, one at a time. One run at a time: a call
// during a run asks for another pass, so a report saved meanwhile does not wait for the next
// trigger. A report leaves the outbox only once the server confirmed it, so a crash or a lost
// answer means a resend with the same Idempotency-Key, which the server answers with the first
// incident.
function flush() {
  if (state.flushing) {
    state.flushAgain = true;
    return state.flushing;
  }
  state.flushing = (async () => {
    try {
      do {
        state.flushAgain = false;
        if (!(await sendWaiting())) break;
      } while (state.flushAgain);
    } finally {
      state.flushing = null;
      state.sending.clear();
      await renderQueue();
    }
  })();
  return state.flushing;
}

// One pass over the outbox; false when sending must stop for now (offline, or no session).
async function sendWaiting() {
  const mine = (await listReports()).filter(
    (report) => report.username === state.me?.username && report.state !== "refused",
  );
  if (mine.length === 0) return true;
  // navigator.onLine false is certain (true is only a hope): no request is worth trying.
  if (!navigator.onLine) return false;
  const me = await loadMe(); // refreshes the CSRF token, and tells whether the session lives
  if (me === null) {
    showLogin();
    return false;
  }
  for (const report of mine) {
    state.sending.add(report.key);
    await renderQueue();
    const outcome = await send(report);
    state.sending.delete(report.key);
    if (outcome === "login") {
      showLogin();
      return false;
    }
    if (outcome === "later") return false;
  }
  return true;
}

async function renderQueue() {
  const list = $("#queue");
  let reports = [];
  try {
    reports = (await listReports()).filter((report) => report.username === state.me?.username);
  } catch {
    // IndexedDB unavailable: submitting says so.
  }
  $("#queue-count").textContent = String(reports.length);
  if (reports.length === 0) {
    list.replaceChildren(element("li", { text: state.t("queue_empty"), className: "empty" }));
    return;
  }
  list.replaceChildren(
    ...reports.map((report) => {
      const refused = report.state === "refused";
      const status = refused
        ? state.t("refused", { message: report.error })
        : state.t(state.sending.has(report.key) ? "sending" : "waiting");
      const item = element("li", { className: refused ? "refused" : "waiting" }, [
        element("span", {
          text: `${categoryName(report.fields.category)} · ${localTime(report.created_at)}`,
        }),
        element("span", { text: status, className: "status" }),
      ]);
      if (refused) {
        const discard = element("button", { text: state.t("discard"), className: "link" });
        discard.type = "button";
        discard.addEventListener("click", async () => {
          await removeReport(report.key);
          await renderQueue();
        });
        item.append(discard);
      }
      return item;
    }),
  );
}

// -- submitting ---------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const message = $("#form-message");
  const { t, point } = state;
  if (!point) return showMessage(message, t("need_position"), "error");
  if (!form.category.value) return showMessage(message, t("need_category"), "error");
  const taken = form.photos.files[0] ?? null;
  const photo = taken && (await fitPhoto(taken));
  if (taken && !photo) {
    return showMessage(message, t("photo_too_large", { mb: MAX_PHOTO_BYTES / 1024 / 1024 }), "error");
  }
  const madeAt = new Date().toISOString();
  const report = {
    key: newIdempotencyKey(),
    username: state.me.username,
    created_at: madeAt,
    state: "waiting",
    fields: {
      // When the inspector saw it: a report queued offline reaches the server later.
      observed_at: madeAt,
      lon: point.lon.toFixed(7),
      lat: point.lat.toFixed(7),
      category: form.category.value,
      description: form.description.value.trim(),
      // A point moved by hand has no measured accuracy: the GPS radius no longer describes it.
      accuracy_m: point.source === "gps" ? point.accuracy.toFixed(1) : null,
    },
    photo,
    photo_name: photo?.name ?? null,
  };
  try {
    await saveReport(report);
  } catch (error) {
    return showMessage(message, t("storage_failed", { message: error?.message ?? error }), "error");
  }
  form.description.value = "";
  form.photos.value = "";
  form.category.value = "";
  await renderQueue();
  await flush();
  const left = (await listReports()).find((kept) => kept.key === report.key);
  if (!left) {
    const sent = state.recent.find((incident) => incident.key === report.key);
    showMessage(message, t("sent", { id: sent?.id ?? "" }), "ok");
  } else if (left.state === "refused") {
    showMessage(message, t("refused", { message: left.error }), "error");
  } else {
    showMessage(message, t("queued"), "info");
  }
}

// -- recent reports -----------------------------------------------------------------------------

function summary(feature) {
  const properties = feature.properties;
  return {
    id: feature.id,
    category: properties.category,
    category_name_zh: properties.category_name_zh,
    category_name_en: properties.category_name_en,
    status: properties.status,
    reported_at: properties.reported_at,
    observed_at: properties.observed_at,
  };
}

function rememberRecent(incident, key) {
  const entry = { ...summary(incident), key };
  state.recent = [entry, ...state.recent.filter((item) => item.id !== entry.id)].slice(0, RECENT_SHOWN);
  remember("recent", state.recent);
  renderRecent();
}

// The caller's own reports, newest first (`reporter=me`).
async function loadRecent() {
  try {
    if (!navigator.onLine) throw new Error("offline");
    const response = await fetch(`${API}/incidents?reporter=me&limit=${RECENT_SHOWN}`, {
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const features = (await response.json()).features;
    const keys = new Map(state.recent.filter((item) => item.key).map((item) => [item.id, item.key]));
    state.recent = features.map((feature) => ({ ...summary(feature), key: keys.get(feature.id) }));
    state.recentOffline = false;
    remember("recent", state.recent);
  } catch {
    state.recent = recall("recent") ?? state.recent;
    state.recentOffline = true;
  }
  renderRecent();
}

function renderRecent() {
  const list = $("#recent");
  const { t, language } = state;
  const items = state.recent.map((incident) => {
    const category = incident[`category_name_${language}`];
    return element("li", { className: `status-${incident.status}` }, [
      // When it was seen, which for a report sent later is not when it arrived.
      element("span", {
        text: `#${incident.id} ${category} · ${localTime(incident.observed_at ?? incident.reported_at)}`,
      }),
      element("span", { text: statusName(language, incident.status), className: "status" }),
    ]);
  });
  if (items.length === 0) items.push(element("li", { text: t("recent_empty"), className: "empty" }));
  if (state.recentOffline) items.unshift(element("li", { text: t("recent_offline"), className: "note" }));
  list.replaceChildren(...items);
}

// The change feed (server/feed): a report of mine that the centre accepts, dispatches or closes
// shows its new status at once. "/api/v1/events" redirects to the feed's own port, where the
// login cookie goes along by CORS.
function followMyReports() {
  if (state.feed || !navigator.onLine || typeof EventSource === "undefined") return;
  state.feed = new EventSource(`${API}/events`, { withCredentials: true });
  state.feed.addEventListener("incident", (message) => {
    const event = JSON.parse(message.data);
    const mine = state.recent.find((item) => item.id === event.incident_id);
    if (!mine || !event.status || mine.status === event.status) return;
    mine.status = event.status;
    remember("recent", state.recent);
    renderRecent();
  });
}

function stopFollowing() {
  if (state.feed) state.feed.close();
  state.feed = null;
}

// -- connection ---------------------------------------------------------------------------------

function renderConnection() {
  const node = $("#connection");
  node.hidden = navigator.onLine;
  node.textContent = state.t("offline");
}

// -- start --------------------------------------------------------------------------------------

async function start(me) {
  state.me = me;
  $("#login").hidden = true;
  $("#reporter").hidden = false;
  $("#who").textContent = me.display_name;
  if (!state.started) {
    state.started = true;
    state.map = createPointMap($("#map"), {
      ownGridCodes: () => state.me?.grids ?? [],
      onMove: (lon, lat) => setPoint({ lon, lat, accuracy: null, source: "map" }, { follow: false }),
    });
    watchPosition();
  }
  state.recent = recall("recent") ?? [];
  await loadCategories();
  await renderQueue();
  await flush();
  await loadRecent();
  followMyReports();
}

async function main() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/report/sw.js", { scope: "/report" }).catch(() => {
      // Not over HTTPS (or localhost): the page works, only not after a reload without network.
    });
  }
  applyLanguage();
  for (const button of document.querySelectorAll("[data-language]")) {
    button.addEventListener("click", () => switchLanguage(button.dataset.language));
  }
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#report-form").addEventListener("submit", submit);
  $("#use-gps").addEventListener("click", useGps);
  window.addEventListener("offline", () => {
    renderConnection();
    stopFollowing(); // no retries while there is no network; "online" opens it again
  });
  window.addEventListener("online", async () => {
    renderConnection();
    if (!state.me) return;
    await flush();
    await loadRecent();
    followMyReports();
  });
  setInterval(() => state.me && flush(), RETRY_EVERY_MS);

  // Nobody was logged in on this phone: ask for a login rather than probe the server for it.
  const me = recall("me") && (await loadMe());
  if (me) await start(me);
  else showLogin();
}

main();
