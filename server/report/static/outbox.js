// The outbox: reports and patrols kept in IndexedDB until the server has them. A record is keyed
// by its Idempotency-Key, made once on the phone when the report is saved (or the patrol ended), so
// every retry of the same record carries the same key and the server files it at most once. A
// patrol's record has `kind: "patrol"`; a report's has no kind (records queued before patrols).

const DATABASE = "gridwatch-report";
const STORE = "outbox";

let opened = null;

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

function database() {
  if (!opened) {
    const opening = indexedDB.open(DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, { keyPath: "key" });
    opened = request(opening);
  }
  return opened;
}

async function store(mode) {
  return (await database()).transaction(STORE, mode).objectStore(STORE);
}

// A random UUID v4 from getRandomValues, which (unlike crypto.randomUUID) also exists on pages
// not served over HTTPS.
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function saveReport(report) {
  await request((await store("readwrite")).put(report));
}

export async function removeReport(key) {
  await request((await store("readwrite")).delete(key));
}

// Oldest first, the order they are sent in.
export async function listReports() {
  const reports = await request((await store("readonly")).getAll());
  return reports.sort((a, b) => a.created_at.localeCompare(b.created_at));
}
