// What the page's modules share: its state, what it keeps in localStorage, and small DOM helpers.

import { chooseLanguage, translator } from "./i18n.js";

// What the page keeps in localStorage for a start without a connection.
const REMEMBERED = {
  me: "gridwatch.report.me",
  categories: "gridwatch.report.categories",
  recent: "gridwatch.report.recent",
  ownGrids: "gridwatch.report.own-grids", // the inspector's grids with their outlines
  patrol: "gridwatch.report.patrol", // the patrol being recorded
  patrols: "gridwatch.report.patrols", // the inspector's recent patrols
};

export const state = {
  language: chooseLanguage(),
  t: null,
  me: null,
  csrf: null,
  categories: [],
  recent: [],
  recentOffline: false,
  point: null, // {lon, lat, accuracy, source: "gps" | "map" | "kept"}
  positionNote: "locating", // shown while there is no point: locating, no_position, no_geolocation
  ownGrids: null, // the inspector's grids with outlines (owngrids.js); null: not known or not limited
  outsideConfirmed: false, // 仍要上报 pressed for the current point, which lies outside those grids
  editing: null, // the refused report being corrected in the form
  patrol: null, // the patrol under way (patrol.js): {username, started_at, positions, distance_m}
  patrols: [], // the inspector's recent patrols, as the server has them
  patrolsOffline: false,
  map: null,
  feed: null, // the change feed's EventSource
  started: false,
};
state.t = translator(state.language);

export const $ = (selector) => document.querySelector(selector);

export function remember(name, value) {
  if (value === null) localStorage.removeItem(REMEMBERED[name]);
  else localStorage.setItem(REMEMBERED[name], JSON.stringify(value));
}

export function recall(name) {
  try {
    return JSON.parse(localStorage.getItem(REMEMBERED[name]));
  } catch {
    return null;
  }
}

export function element(tag, { text, className } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  node.append(...children);
  return node;
}

export function button(text, onClick, className = "link") {
  const node = element("button", { text, className });
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

export function showMessage(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

export function localTime(iso) {
  return new Date(iso).toLocaleString(state.language === "zh" ? "zh-CN" : "en-GB", {
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
}

// Whole metres, or kilometres to two decimals, in the page's language.
export function formatDistance(metres) {
  const { t } = state;
  if (metres < 1000) return t("metres", { n: Math.round(metres) });
  return t("kilometres", { n: (metres / 1000).toFixed(2) });
}

// 上报, 仍要上报 once the inspector was told the point is outside their grids, 重新上报 while a
// refused report is being corrected.
export function renderSubmitLabel() {
  const submit = $("#submit");
  submit.dataset.text = state.outsideConfirmed ? "submit_anyway" : state.editing ? "resubmit" : "submit";
  submit.textContent = state.t(submit.dataset.text);
}
