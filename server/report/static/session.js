// Who is reporting: the caller as the server knows them, or (offline) as last seen on this phone.

import { API } from "./api.js";
import { $, recall, remember, state } from "./common.js";

// The caller from the server, or (offline) as last seen; null when nobody is logged in.
export async function loadMe() {
  if (!navigator.onLine) return recall("me");
  let response;
  try {
    response = await fetch(`${API}/users/me`, { credentials: "same-origin" });
  } catch {
    return recall("me");
  }
  if (response.status === 401) {
    remember("me", null);
    return null;
  }
  if (!response.ok) return recall("me"); // the server is down, not the session
  const me = await response.json();
  state.csrf = me.csrf_token ?? null;
  delete me.csrf_token;
  remember("me", me);
  return me;
}

export function showLogin() {
  state.me = null;
  $("#reporter").hidden = true;
  $("#login").hidden = false;
}
