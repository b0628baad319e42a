// 巡查: a patrol recorded on the phone. 开始巡查 starts following the GPS; every fix good enough
// joins the track, which is kept in localStorage so a reload (or a crash) mid-patrol loses
// nothing. 结束巡查 puts the patrol into the outbox beside the reports, with an Idempotency-Key of
// its own, and the outbox sends it (POST /api/v1/patrols) once the phone is online.

import { $, formatDistance, recall, remember, showMessage, state } from "./common.js";
import { distanceM } from "./geometry.js";
import { newIdempotencyKey, saveReport } from "./outbox.js";
import { latestPosition, listenToFixes } from "./position.js";
import { flush, myRecords, renderQueue } from "./queue.js";

const WORST_ACCURACY_M = 100; // a fix less accurate than this is not recorded
const MIN_STEP_M = 5; // nor one this close to the last one (or within half its accuracy)
const MAX_POSITIONS = 20_000; // what the server takes in one track
const MAX_DURATION_MS = 12 * 3600 * 1000; // the server's longest patrol: it ends itself then
const TICK_MS = 1000;
const FRESH_FIX_MS = 30_000; // a fix this recent is where a patrol starts

let stopListening = null;
let ticker = null;
let wakeLock = null;
let lastFix = null; // {accuracy, recorded} of the latest fix, recorded or not

function formatElapsed(milliseconds) {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  const parts = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  return parts.map((part, index) => (index === 0 ? String(part) : String(part).padStart(2, "0"))).join(":");
}

function keep() {
  remember("patrol", state.patrol);
}

function onFix(position) {
  const patrol = state.patrol;
  if (!patrol) return;
  const { longitude, latitude, accuracy } = position.coords;
  lastFix = { accuracy, recorded: false };
  if (accuracy > WORST_ACCURACY_M) return renderPatrol();
  const here = [Number(longitude.toFixed(6)), Number(latitude.toFixed(6))];
  const previous = patrol.positions.at(-1);
  const step = previous ? distanceM(previous, here) : 0;
  // Standing still, the GPS wanders by about its accuracy: that is no distance walked.
  if (previous && step < Math.max(MIN_STEP_M, accuracy / 2)) return renderPatrol();
  patrol.positions.push(here);
  patrol.distance_m += step;
  if (patrol.positions.length > MAX_POSITIONS) {
    // Every other position (the last kept): the shape stays, the length barely changes.
    const last = patrol.positions.length - 1;
    patrol.positions = patrol.positions.filter((_, index) => index % 2 === 0 || index === last);
  }
  lastFix.recorded = true;
  keep();
  state.map?.showTrack(patrol.positions);
  renderPatrol();
}

// The screen stays on while patrolling, where the browser allows it: with the screen off a phone
// stops giving a page its position.
async function keepScreenOn() {
  try {
    wakeLock = (await navigator.wakeLock?.request("screen")) ?? null;
  } catch {
    wakeLock = null; // refused (battery saver, no HTTPS): the track may have gaps
  }
}

document.addEventListener("visibilitychange", () => {
  // A wake lock ends when the page is hidden; coming back takes a new one.
  if (state.patrol && document.visibilityState === "visible") keepScreenOn();
});

// Records the fixes of the page's GPS watch (position.js), starting from the latest one if it is
// recent: a phone standing still may give no new fix for a while.
function follow() {
  keepScreenOn();
  stopListening = listenToFixes(onFix);
  const latest = latestPosition();
  if (latest && Date.now() - latest.timestamp < FRESH_FIX_MS) onFix(latest);
  ticker = setInterval(() => {
    if (state.patrol && Date.now() - Date.parse(state.patrol.started_at) >= MAX_DURATION_MS) {
      endPatrol({ endedItself: true });
    } else renderPatrol();
  }, TICK_MS);
  state.map?.showTrack(state.patrol.positions);
}

function stopFollowing() {
  stopListening?.();
  clearInterval(ticker);
  stopListening = null;
  ticker = null;
  lastFix = null;
  wakeLock?.release().catch(() => {});
  wakeLock = null;
  state.map?.showTrack([]);
}

export function startPatrol() {
  if (!("geolocation" in navigator)) {
    return showMessage($("#patrol-message"), state.t("patrol_no_geolocation"), "error");
  }
  const startedAt = new Date().toISOString();
  state.patrol = { username: state.me.username, started_at: startedAt, positions: [], distance_m: 0 };
  keep();
  showMessage($("#patrol-message"), "");
  follow();
  renderPatrol();
}

// The outbox record of a patrol ended at `endedAt` (a Date); null when it has no position.
function recordOf(patrol, endedAt) {
  const { positions } = patrol;
  if (positions.length === 0) return null;
  return {
    key: newIdempotencyKey(), // made once, here: every resend of this patrol carries it
    kind: "patrol",
    username: patrol.username,
    created_at: endedAt.toISOString(),
    state: "waiting",
    distance_m: patrol.distance_m,
    patrol: {
      started_at: patrol.started_at,
      ended_at: endedAt.toISOString(),
      // One fix makes a check-in.
      track:
        positions.length === 1
          ? { type: "Point", coordinates: positions[0] }
          : { type: "LineString", coordinates: positions },
    },
  };
}

function endedBy(patrol, now = Date.now()) {
  return new Date(Math.min(now, Date.parse(patrol.started_at) + MAX_DURATION_MS));
}

// After a reload or a login: the patrol this user had under way goes on. One of another user,
// left when their session ended, waits in the outbox for their next login instead.
export async function resumePatrol() {
  const kept = state.patrol ?? recall("patrol");
  if (!kept) return;
  if (kept.username !== state.me?.username) {
    if (state.patrol) stopFollowing();
    state.patrol = null;
    const record = recordOf(kept, endedBy(kept));
    if (record) await saveReport(record).catch(() => {});
    remember("patrol", null);
    return renderPatrol();
  }
  if (state.patrol || state.me?.role !== "inspector") return; // under way in this page already
  state.patrol = kept;
  follow();
  renderPatrol();
}

// Ends the patrol under way and hands it to the outbox; one without any position is dropped.
export async function endPatrol({ endedItself = false } = {}) {
  const patrol = state.patrol;
  if (!patrol) return;
  const message = $("#patrol-message");
  const { t } = state;
  stopFollowing();
  state.patrol = null;
  const record = recordOf(patrol, endedBy(patrol));
  if (!record) {
    remember("patrol", null);
    renderPatrol();
    return showMessage(message, t("patrol_no_fix"), "error");
  }
  try {
    await saveReport(record);
  } catch (error) {
    // Kept in localStorage still: ending it again may work once there is room.
    state.patrol = patrol;
    follow();
    return showMessage(message, t("storage_failed", { message: error?.message ?? error }), "error");
  }
  remember("patrol", null);
  renderPatrol();
  await renderQueue();
  await flush();
  const left = (await myRecords()).find((kept) => kept.key === record.key);
  const ended = endedItself ? `${t("patrol_ended_itself")} ` : "";
  if (!left) showMessage(message, ended + t("patrol_sent"), "ok");
  else if (left.state === "refused") showMessage(message, t("refused", { message: left.error }), "error");
  else showMessage(message, ended + t("patrol_queued"), "info");
}

export function renderPatrol() {
  const { t, patrol } = state;
  const card = $("#patrol");
  card.hidden = state.me?.role !== "inspector"; // only grid members record patrols
  $("#patrol-start").hidden = Boolean(patrol);
  $("#patrol-end").hidden = !patrol;
  $("#patrol-status").textContent = patrol ? t("patrol_running") : t("patrol_idle");
  $("#patrol-stats").hidden = !patrol;
  const poor = patrol && lastFix && !lastFix.recorded && lastFix.accuracy > WORST_ACCURACY_M;
  const fixWarning = poor ? t("patrol_poor_fix", { m: Math.round(lastFix.accuracy) }) : "";
  showMessage($("#patrol-fix"), fixWarning, "warning");
  if (!patrol) return;
  $("#patrol-stats").textContent = t("patrol_stats", {
    elapsed: formatElapsed(Date.now() - Date.parse(patrol.started_at)),
    distance: formatDistance(patrol.distance_m),
    fixes: patrol.positions.length,
  });
}
