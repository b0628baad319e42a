// The inspector's own grids (`grids` of GET /api/v1/users/me) with their outlines
// (GET /api/v1/grids/{code}), loaded once per start and kept for offline use. The server files an
// inspector's report only inside these grids (a 403 naming `lon/lat` otherwise,
// server/incidents/service.py), so the page can warn before sending.

import { API } from "./api.js";
import { recall, remember, state } from "./common.js";
import { containsPoint } from "./geometry.js";

// About 0.1 m: the shape the server checks against, without survey-grade vertex noise.
const SIMPLIFY_DEGREES = 0.000001;

function sameCodes(a, b) {
  return a.length === b.length && a.every((code, index) => code === b[index]);
}

async function fetchGrid(code) {
  const response = await fetch(`${API}/grids/${encodeURIComponent(code)}?simplify=${SIMPLIFY_DEGREES}`, {
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const { geometry, properties } = await response.json();
  return {
    code,
    name_zh: properties.name_zh,
    name_en: properties.name_en,
    geometry,
  };
}

// Sets state.ownGrids: the grids (null when this user is not limited to grids of their own, or
// when they are not known yet, e.g. a first start offline).
export async function loadOwnGrids() {
  const me = state.me;
  if (me?.role !== "inspector") {
    state.ownGrids = null;
    return;
  }
  const codes = me.grids ?? [];
  const kept = recall("ownGrids");
  const keptFits = kept?.username === me.username && sameCodes(kept.codes, codes);
  state.ownGrids = keptFits ? kept.grids : null;
  if (!navigator.onLine) return;
  try {
    const grids = await Promise.all(codes.map(fetchGrid));
    state.ownGrids = grids;
    try {
      remember("ownGrids", { username: me.username, codes, grids });
    } catch {
      // Storage full: the outlines are fetched again on the next start.
    }
  } catch {
    // The server is unreachable: keep what was kept, if it fits.
  }
}

// True or false for a point in or out of the inspector's grids; null when the page cannot tell.
export function insideOwnGrids(point) {
  if (!point || !state.ownGrids) return null;
  return state.ownGrids.some((grid) => containsPoint(grid.geometry, point.lon, point.lat));
}

// A grid's name in the page's language (from `name_zh`, `name_en`, as the API gives them).
export function gridName(grid) {
  return (state.language === "en" && grid.name_en) || grid.name_zh || grid.code;
}
