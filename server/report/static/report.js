// The inspector's phone page: sign in, take the position, fill the report, and hand it to the
// outbox, which sends it now or when the phone is next online (docs/report-page.md).
//
// The modules: common.js (shared state and helpers), session.js (who is logged in), position.js
// (GPS and the point), owngrids.js (the inspector's grids, to warn before a report outside them),
// form.js (the report form, correcting a refused report), queue.js (running the outbox; outbox.js
// keeps it), recent.js (我的上报, 我的巡查), patrol.js (recording a patrol), map.js (the small map),
// api.js (the answers of the server).

import { API, errorOf, languageHeader } from "./api.js";
import { $, recall, remember, showMessage, state } from "./common.js";
import {
  cancelEditing,
  editReport,
  loadCategories,
  renderCategories,
  renderEditing,
  submit,
} from "./form.js";
import { translator } from "./i18n.js";
import { createPointMap } from "./map.js";
import { gridName, loadOwnGrids } from "./owngrids.js";
import { endPatrol, renderPatrol, resumePatrol, startPatrol } from "./patrol.js";
import { centreOnOwnGrid, renderPoint, setPoint, useGps, watchPosition } from "./position.js";
import { configureQueue, flush, renderQueue } from "./queue.js";
import {
  followMyReports,
  loadPatrols,
  loadRecent,
  renderPatrols,
  renderRecent,
  stopFollowing,
} from "./recent.js";
import { loadMe, showLogin } from "./session.js";

const RETRY_EVERY_MS = 30_000; // also retry when the server, not the phone, was unreachable

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
  renderEditing();
  renderRecent();
  renderPatrol();
  renderPatrols();
  renderQueue();
  state.map?.relabel();
}

function switchLanguage(language) {
  state.language = language;
  state.t = translator(language);
  const url = new URL(location.href);
  url.searchParams.set("lang", language);
  history.replaceState(null, "", url); // a bookmark or reload keeps the choice
  applyLanguage();
}

// -- login --------------------------------------------------------------------------------------

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
      headers: { "Content-Type": "application/json", ...languageHeader() },
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
  await endPatrol(); // a patrol under way ends here, and waits in the outbox for this user
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
  cancelEditing();
  state.csrf = null;
  state.recent = [];
  state.patrols = [];
  state.ownGrids = null;
  state.map?.setOwnGrids([]);
  remember("me", null);
  remember("recent", null);
  remember("patrols", null);
  remember("ownGrids", null);
  showLogin();
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
      nameOf: gridName,
      onMove: (lon, lat) => setPoint({ lon, lat, accuracy: null, source: "map" }, { follow: false }),
    });
    watchPosition();
  }
  state.recent = recall("recent") ?? [];
  state.patrols = recall("patrols") ?? [];
  await resumePatrol();
  renderPatrol();
  await loadOwnGrids();
  state.map?.setOwnGrids(state.ownGrids ?? []);
  if (state.positionNote !== "locating") centreOnOwnGrid(); // the phone gave no position
  renderPoint();
  await loadCategories();
  await renderQueue();
  await flush();
  await loadRecent();
  await loadPatrols();
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
  $("#cancel-edit").addEventListener("click", cancelEditing);
  $("#patrol-start").addEventListener("click", startPatrol);
  $("#patrol-end").addEventListener("click", () => endPatrol());
  configureQueue({
    edit: editReport,
    discarded: (key) => state.editing?.key === key && cancelEditing(),
  });
  window.addEventListener("offline", () => {
    renderConnection();
    stopFollowing(); // no retries while there is no network; "online" opens it again
  });
  window.addEventListener("online", async () => {
    renderConnection();
    if (!state.me) return;
    await flush();
    await loadRecent();
    await loadPatrols();
    followMyReports();
  });
  setInterval(() => state.me && flush(), RETRY_EVERY_MS);

  // Nobody was logged in on this phone: ask for a login rather than probe the server for it.
  const me = recall("me") && (await loadMe());
  if (me) await start(me);
  else showLogin();
}

main();
