// The report form: its categories, 上报 (which hands the report to the outbox), and correcting a
// report the server refused.

import { API, errorOf } from "./api.js";
import { $, element, recall, remember, renderSubmitLabel, showMessage, state } from "./common.js";
import { listReports, newIdempotencyKey, removeReport, saveReport } from "./outbox.js";
import { insideOwnGrids } from "./owngrids.js";
import { MAX_PHOTO_BYTES, fitPhoto } from "./photo.js";
import { followGps, setPoint } from "./position.js";
import { flush, renderQueue } from "./queue.js";

export async function loadCategories() {
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

export function renderCategories() {
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

// Fills the form with a refused report so the inspector can correct it (move the point, change
// the text) and send it again. Its photo is kept unless another one is chosen.
export function editReport(report) {
  const form = $("#report-form");
  state.editing = report;
  form.category.value = report.fields.category;
  form.description.value = report.fields.description;
  form.photos.value = "";
  const accuracy = report.fields.accuracy_m === null ? null : Number(report.fields.accuracy_m);
  setPoint(
    { lon: Number(report.fields.lon), lat: Number(report.fields.lat), accuracy, source: "kept" },
    { follow: true },
  );
  renderEditing();
  form.scrollIntoView({ block: "start" });
}

export function renderEditing() {
  const { t, editing } = state;
  $("#editing").hidden = !editing;
  if (editing) {
    const photo = editing.photo ? ` ${t("photo_kept")}` : "";
    $("#editing-text").textContent = `${t("editing", { message: editing.error ?? "" })}${photo}`;
  }
  renderSubmitLabel();
}

function clearForm() {
  const form = $("#report-form");
  form.description.value = "";
  form.photos.value = "";
  form.category.value = "";
  state.editing = null;
  renderEditing();
  followGps();
}

export function cancelEditing() {
  clearForm();
  showMessage($("#form-message"), "");
}

function untouched(form) {
  return !form.category.value && !form.description.value.trim() && form.photos.files.length === 0;
}

export async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const message = $("#form-message");
  const { t, point, editing } = state;
  if (!point) return showMessage(message, t("need_position"), "error");
  if (!form.category.value) return showMessage(message, t("need_category"), "error");
  // Outside the inspector's grids the server will refuse it: say so first, send on a second press.
  if (insideOwnGrids(point) === false && !state.outsideConfirmed) {
    state.outsideConfirmed = true;
    renderSubmitLabel();
    return showMessage(message, t("outside_confirm"), "error");
  }
  const taken = form.photos.files[0] ?? null;
  const photo = taken ? await fitPhoto(taken) : (editing?.photo ?? null);
  if (taken && !photo) {
    return showMessage(message, t("photo_too_large", { mb: MAX_PHOTO_BYTES / 1024 / 1024 }), "error");
  }
  const madeAt = new Date().toISOString();
  const report = {
    // A corrected report is a new request: a key of its own (the refused one filed nothing).
    key: newIdempotencyKey(),
    username: state.me.username,
    created_at: editing?.created_at ?? madeAt,
    state: "waiting",
    fields: {
      // When the inspector saw it: a report queued offline reaches the server later.
      observed_at: editing?.fields.observed_at ?? madeAt,
      lon: point.lon.toFixed(7),
      lat: point.lat.toFixed(7),
      category: form.category.value,
      description: form.description.value.trim(),
      // A point moved by hand has no measured accuracy: the GPS radius no longer describes it.
      accuracy_m: point.source === "map" || point.accuracy === null ? null : point.accuracy.toFixed(1),
    },
    photo,
    photo_name: taken ? photo.name : (editing?.photo_name ?? null),
  };
  try {
    await saveReport(report);
    if (editing) await removeReport(editing.key);
  } catch (error) {
    return showMessage(message, t("storage_failed", { message: error?.message ?? error }), "error");
  }
  clearForm();
  await renderQueue();
  await flush();
  const left = (await listReports()).find((kept) => kept.key === report.key);
  if (!left) {
    const sent = state.recent.find((incident) => incident.key === report.key);
    showMessage(message, t("sent", { id: sent?.id ?? "" }), "ok");
  } else if (left.state === "refused") {
    // The form stays with the report, unless the inspector has begun the next one meanwhile.
    if (untouched(form)) editReport(left);
    showMessage(message, t("refused_kept", { message: left.error }), "error");
  } else {
    showMessage(message, t("queued"), "info");
  }
}
