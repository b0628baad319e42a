// Where the report is: the phone's GPS, or a point moved on the map, with the warnings about it.

import { $, renderSubmitLabel, showMessage, state } from "./common.js";
import { gridName, insideOwnGrids } from "./owngrids.js";

const ACCURACY_WARNING_M = 50;

let lastFix = null;
let firstFix = true;
// One watch of the GPS for the page: the patrol recorder (patrol.js) listens to it too.
let lastPosition = null;
const listeners = new Set();

// Calls `listener(position)` with every GeolocationPosition from now on; returns the way to stop.
export function listenToFixes(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// The last GeolocationPosition the phone gave, or null.
export function latestPosition() {
  return lastPosition;
}

// `point.source`: "gps" follows the phone; "map" was put there by hand; "kept" is the point of a
// refused report being corrected. Only a "gps" point moves with the GPS.
export function setPoint(point, { follow, fromWatch = false }) {
  state.point = point;
  // A point put anywhere by hand is checked again before sending; the GPS moving a little
  // outside the grids does not ask again for 仍要上报 (it would, every second).
  if (!fromWatch || insideOwnGrids(point) !== false) state.outsideConfirmed = false;
  state.map?.show(point.lon, point.lat, { follow });
  renderPoint();
  renderSubmitLabel();
}

// The warning shown while the point lies outside the inspector's own grids, where the server
// refuses their reports: before 上报, not after.
function renderGridWarning() {
  const { t } = state;
  const outside = insideOwnGrids(state.point) === false;
  let text = "";
  if (outside && state.ownGrids.length === 0) text = t("no_own_grids");
  else if (outside) {
    text = t("outside_grids", { grids: state.ownGrids.map(gridName).join(t("list_separator")) });
  }
  showMessage($("#grid-warning"), text, "warning");
}

export function renderPoint() {
  const { t, point } = state;
  const text = $("#position-text");
  const warning = $("#accuracy-warning");
  renderGridWarning();
  if (!point) {
    text.textContent = t(state.positionNote);
    warning.hidden = true;
    return;
  }
  const where = `${point.lat.toFixed(6)}, ${point.lon.toFixed(6)}`;
  if (point.source !== "gps") {
    text.textContent = `${where} · ${t(point.source === "map" ? "moved" : "kept")}`;
    warning.hidden = true;
    return;
  }
  const accuracy = Math.round(point.accuracy);
  text.textContent = `${where} · ${t("accuracy", { m: accuracy })}`;
  const poor = point.accuracy > ACCURACY_WARNING_M;
  showMessage(warning, poor ? t("accuracy_warning", { m: accuracy }) : "", "warning");
}

export function watchPosition() {
  if (!("geolocation" in navigator)) {
    state.positionNote = "no_geolocation";
    renderPoint();
    centreOnOwnGrid();
    return;
  }
  navigator.geolocation.watchPosition(
    (position) => {
      lastPosition = position;
      for (const listener of listeners) listener(position);
      const { longitude, latitude, accuracy } = position.coords;
      lastFix = { lon: longitude, lat: latitude, accuracy, source: "gps" };
      // A point moved by hand (or kept from a refused report) stays where it is until the
      // inspector asks for the GPS again.
      if (!state.point || state.point.source === "gps") {
        setPoint(lastFix, { follow: firstFix, fromWatch: true });
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

export function useGps() {
  if (lastFix) setPoint(lastFix, { follow: true });
}

// Back to following the GPS, after a refused report's kept point is done with.
export function followGps() {
  if (state.point?.source !== "kept") return;
  if (lastFix) setPoint(lastFix, { follow: true });
  else {
    state.point = null;
    renderPoint();
  }
}

// Without a position from the phone, the map shows the inspector's first grid.
export function centreOnOwnGrid() {
  const grid = state.ownGrids?.[0];
  if (state.map && grid && !state.point) state.map.fit(grid.geometry);
}
