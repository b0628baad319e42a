// Running the outbox (outbox.js): sending what waits, one at a time, and listing it under 待发送.
// See docs/report-page.md, "The offline queue".

import { postReport } from "./api.js";
import { $, button, element, localTime, state } from "./common.js";
import { listReports, removeReport, saveReport } from "./outbox.js";
import { rememberRecent } from "./recent.js";
import { loadMe, showLogin } from "./session.js";

const run = { flushing: null, again: false, sending: new Set() };
// What the list's buttons do beyond the outbox (set by report.js): open a refused report in the
// form, and forget it there when it is deleted.
const hooks = { edit: () => {}, discarded: () => {} };

export function configureQueue(given) {
  Object.assign(hooks, given);
}

function categoryName(code) {
  const category = state.categories.find((item) => item.code === code);
  if (!category) return code;
  return state.language === "zh" ? category.name_zh : category.name_en;
}

// The current user's records in the outbox, oldest first.
export async function myRecords() {
  return (await listReports()).filter((record) => record.username === state.me?.username);
}

// Sends one report; see api.js for the outcomes. Only a confirmed filing leaves the outbox.
async function send(report) {
  const { outcome, body, message, field } = await postReport(report, { csrf: state.csrf });
  if (outcome === "sent") {
    await removeReport(report.key);
    rememberRecent(body, report.key);
  } else if (outcome === "refused") {
    await saveReport({ ...report, state: "refused", error: message, error_field: field ?? null });
  }
  return outcome;
}

// Sends the current user's waiting records, oldest first, one at a time. One run at a time: a call
// during a run asks for another pass, so a record saved meanwhile does not wait for the next
// trigger. A record leaves the outbox only once the server confirmed it, so a crash or a lost
// answer means a resend with the same Idempotency-Key, which the server answers with what the
// first attempt created.
export function flush() {
  if (run.flushing) {
    run.again = true;
    return run.flushing;
  }
  run.flushing = (async () => {
    try {
      do {
        run.again = false;
        if (!(await sendWaiting())) break;
      } while (run.again);
    } finally {
      run.flushing = null;
      run.sending.clear();
      await renderQueue();
    }
  })();
  return run.flushing;
}

// One pass over the outbox; false when sending must stop for now (offline, or no session).
async function sendWaiting() {
  const mine = (await myRecords()).filter((record) => record.state !== "refused");
  if (mine.length === 0) return true;
  // navigator.onLine false is certain (true is only a hope): no request is worth trying.
  if (!navigator.onLine) return false;
  const me = await loadMe(); // refreshes the CSRF token, and tells whether the session lives
  if (me === null) {
    showLogin();
    return false;
  }
  for (const record of mine) {
    run.sending.add(record.key);
    await renderQueue();
    const outcome = await send(record);
    run.sending.delete(record.key);
    if (outcome === "login") {
      showLogin();
      return false;
    }
    if (outcome === "later") return false;
  }
  return true;
}

export async function renderQueue() {
  const { t } = state;
  const list = $("#queue");
  let records = [];
  try {
    records = await myRecords();
  } catch {
    // IndexedDB unavailable: submitting says so.
  }
  $("#queue-count").textContent = String(records.length);
  if (records.length === 0) {
    list.replaceChildren(element("li", { text: t("queue_empty"), className: "empty" }));
    return;
  }
  list.replaceChildren(
    ...records.map((report) => {
      const refused = report.state === "refused";
      const status = refused
        ? t("refused", { message: report.error })
        : t(run.sending.has(report.key) ? "sending" : "waiting");
      const item = element("li", { className: refused ? "refused" : "waiting" }, [
        element("span", {
          text: `${categoryName(report.fields.category)} · ${localTime(report.created_at)}`,
        }),
        element("span", { text: status, className: "status" }),
      ]);
      if (refused) {
        // Refused is final for this request; corrected, it goes again as a new one.
        const actions = element("span", { className: "actions" }, [
          button(t("edit"), () => hooks.edit(report)),
          button(t("discard"), async () => {
            await removeReport(report.key);
            hooks.discarded(report.key);
            await renderQueue();
          }),
        ]);
        item.append(actions);
      }
      return item;
    }),
  );
}
