// Running the outbox (outbox.js): sending what waits, one at a time, and listing it under 待发送.
// See docs/report-page.md, "The offline queue".

import { postPatrol, postReport } from "./api.js";
import { $, button, element, formatDistance, localTime, state } from "./common.js";
import { listReports, removeReport, saveReport } from "./outbox.js";
import { rememberPatrol, rememberRecent } from "./recent.js";
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

// Sends one record, a report or a patrol; see api.js for the outcomes. Only what the server
// confirmed leaves the outbox.
async function send(record) {
  const patrol = record.kind === "patrol";
  const { outcome, body, message, field } = await (patrol ? postPatrol : postReport)(record, {
    csrf: state.csrf,
  });
  if (outcome === "sent") {
    await removeReport(record.key);
    if (patrol) rememberPatrol(body);
    else rememberRecent(body, record.key);
  } else if (outcome === "refused") {
    await saveReport({ ...record, state: "refused", error: message, error_field: field ?? null });
  }
  return outcome;
}

function describe(record) {
  if (record.kind !== "patrol") {
    return `${categoryName(record.fields.category)} · ${localTime(record.created_at)}`;
  }
  const { started_at, ended_at } = record.patrol;
  const to = new Date(ended_at).toLocaleTimeString(state.language === "zh" ? "zh-CN" : "en-GB", {
    hour: "2-digit",
    minute: "2-digit",
  });
  return state.t("patrol_item", {
    from: localTime(started_at),
    to,
    distance: formatDistance(record.distance_m),
  });
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
    ...records.map((record) => {
      const refused = record.state === "refused";
      const status = refused
        ? t("refused", { message: record.error })
        : t(run.sending.has(record.key) ? "sending" : "waiting");
      const kind = record.kind === "patrol" ? "patrol" : "report";
      const item = element("li", { className: `${refused ? "refused" : "waiting"} ${kind}` }, [
        element("span", { text: describe(record) }),
        element("span", { text: status, className: "status" }),
      ]);
      if (refused) {
        // Refused is final for this request. A report, corrected, goes again as a new one; a
        // patrol's track cannot be corrected.
        const discard = button(t("discard"), async () => {
          await removeReport(record.key);
          hooks.discarded(record.key);
          await renderQueue();
        });
        const edit = kind === "report" ? [button(t("edit"), () => hooks.edit(record))] : [];
        item.append(element("span", { className: "actions" }, [...edit, discard]));
      }
      return item;
    }),
  );
}
