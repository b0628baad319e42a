// How the page talks to /api/v1: the one error shape, and what each answer to a report or a
// patrol sent from the outbox means.

import { state } from "./common.js";

export const API = "/api/v1";

// `{"error": {"code", "message", "field"}}`, or what can be said when the body is something else.
export async function errorOf(response) {
  try {
    const { message, field } = (await response.json()).error;
    return { message, field };
  } catch {
    return { message: `HTTP ${response.status}`, field: null };
  }
}

function formData(report) {
  const data = new FormData();
  for (const [name, value] of Object.entries(report.fields)) {
    if (value !== null && value !== "") data.append(name, String(value));
  }
  if (report.photo) data.append("photos", report.photo, report.photo_name || "photo.jpg");
  return data;
}

// What an answer to a POST from the outbox means. Resolves to {outcome, body, message, field},
// the outcome being
//   "sent"    201 created, or 200: the server already had it under this key (a retry);
//   "later"   no answer, the server busy or down, or a stale CSRF token (the next run refreshes it);
//   "login"   the session is gone;
//   "refused" any other 4xx: the server will never take it as it is (`message` says why, `field`
//             names what, e.g. "lon/lat" for a point outside the inspector's grids).
async function outcomeOf(sending) {
  let response;
  try {
    response = await sending;
  } catch {
    return { outcome: "later" };
  }
  if (response.ok) return { outcome: "sent", body: await response.json() };
  if (response.status === 401) return { outcome: "login" };
  if (response.status >= 500 || [408, 429].includes(response.status)) return { outcome: "later" };
  const error = await errorOf(response);
  if (response.status === 403 && error.field === "X-CSRF-Token") return { outcome: "later" };
  return { outcome: "refused", message: error.message, field: error.field };
}

// The server's error messages come in the language of Accept-Language: the page's, not the phone's.
export function languageHeader() {
  return { "Accept-Language": state.language };
}

function headers(key, csrf) {
  return { "Idempotency-Key": key, ...languageHeader(), ...(csrf ? { "X-CSRF-Token": csrf } : {}) };
}

// Files one report from the outbox with its Idempotency-Key (`body` is the incident).
export function postReport(report, { csrf }) {
  return outcomeOf(
    fetch(`${API}/incidents`, {
      method: "POST",
      credentials: "same-origin",
      headers: headers(report.key, csrf),
      body: formData(report),
    }),
  );
}

// Records one patrol from the outbox with its Idempotency-Key (`body` is the patrol).
export function postPatrol(record, { csrf }) {
  return outcomeOf(
    fetch(`${API}/patrols`, {
      method: "POST",
      credentials: "same-origin",
      headers: { ...headers(record.key, csrf), "Content-Type": "application/json" },
      body: JSON.stringify(record.patrol),
    }),
  );
}
