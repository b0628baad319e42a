// Where the report is: the phone's GPS, or a point moved on the map, with the warnings about it.

import { API } from "./api.js";
import { $, showMessage, state } from "./common.js";

const ACCURACY_WARNING_M = 50;

let lastFix = null;
let firstFix = true;

export function setPoint(point, { follow }) {
  state.point = point;
  state.map?.show(point.lon, point.lat, { follow });
  renderPoint();
}

export function renderPoint() {
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

export function watchPosition() {
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

export function useGps() {
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
