// 我的上报: the caller's own recent reports with their status, kept for offline use and kept up to
// date by the change feed; 我的巡查: their recent patrols as the server recorded them.

import { API } from "./api.js";
import { $, element, formatDistance, localTime, recall, remember, state } from "./common.js";
import { statusName } from "./i18n.js";

const RECENT_SHOWN = 20;
const PATROLS_SHOWN = 10;

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

export function rememberRecent(incident, key) {
  const entry = { ...summary(incident), key };
  state.recent = [entry, ...state.recent.filter((item) => item.id !== entry.id)].slice(0, RECENT_SHOWN);
  remember("recent", state.recent);
  renderRecent();
}

// The caller's own reports, newest first (`reporter=me`).
export async function loadRecent() {
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

export function renderRecent() {
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
export function followMyReports() {
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

export function stopFollowing() {
  if (state.feed) state.feed.close();
  state.feed = null;
}

// -- 我的巡查 --------------------------------------------------------------------------------------

function patrolSummary(feature) {
  const { grid, grid_name, started_at, ended_at, length_m } = feature.properties;
  return { id: feature.id, grid, grid_name, started_at, ended_at, length_m };
}

export function rememberPatrol(feature) {
  const entry = patrolSummary(feature);
  state.patrols = [entry, ...state.patrols.filter((item) => item.id !== entry.id)].slice(0, PATROLS_SHOWN);
  remember("patrols", state.patrols);
  renderPatrols();
}

// The inspector's own patrols, newest first (GET /api/v1/patrols lists a grid member's own).
export async function loadPatrols() {
  if (state.me?.role !== "inspector") return renderPatrols();
  try {
    if (!navigator.onLine) throw new Error("offline");
    const response = await fetch(`${API}/patrols?limit=${PATROLS_SHOWN}`, { credentials: "same-origin" });
    if (!response.ok) return;
    state.patrols = (await response.json()).features.map(patrolSummary);
    state.patrolsOffline = false;
    remember("patrols", state.patrols);
  } catch {
    state.patrols = recall("patrols") ?? state.patrols;
    state.patrolsOffline = true;
  }
  renderPatrols();
}

export function renderPatrols() {
  const { t } = state;
  $("#patrols-card").hidden = state.me?.role !== "inspector";
  const items = state.patrols.map((patrol) => {
    const minutes = Math.round((Date.parse(patrol.ended_at) - Date.parse(patrol.started_at)) / 60_000);
    return element("li", {}, [
      element("span", { text: `${localTime(patrol.started_at)} · ${patrol.grid_name ?? patrol.grid}` }),
      element("span", {
        text: t("patrol_summary", { distance: formatDistance(patrol.length_m), minutes }),
        className: "status",
      }),
    ]);
  });
  if (items.length === 0) items.push(element("li", { text: t("patrols_empty"), className: "empty" }));
  if (state.patrolsOffline) items.unshift(element("li", { text: t("recent_offline"), className: "note" }));
  $("#patrols").replaceChildren(...items);
}
