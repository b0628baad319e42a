// The report form: its categories, and 上报, which hands the report to the outbox.

import { API, errorOf } from "./api.js";
import { $, element, recall, remember, showMessage, state } from "./common.js";
import { listReports, newIdempotencyKey, saveReport } from "./outbox.js";
import { MAX_PHOTO_BYTES, fitPhoto } from "./photo.js";
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

export async function submit(event) {
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
