/* gridwatch: one change-feed stream for all tabs of a browser (a SharedWorker).
 *
 * Browsers open at most six HTTP/1.1 connections to one host, and an EventSource keeps one for
 * good: with a stream per tab, the seventh tab on the live map would wait for ever. This worker
 * holds a single EventSource to the feed (server/feed) and hands every event to each tab
 * connected to it (dashboard/assets/livemap.js, openFeed). Tabs of another user get another
 * worker: the tab names it after its user.
 */
"use strict";

const ports = new Set();
let source = null;
let sourceUrl = null;

function broadcast(message) {
  for (const port of ports) {
    port.postMessage(message);
  }
}

function state() {
  broadcast({type: "state", readyState: source ? source.readyState : 2});
}

function open(url) {
  // A stream the server ended for good (401, 429) is closed: a tab that comes later tries again.
  if (source && source.readyState !== 2 && sourceUrl === url) {
    return;
  }
  if (source) {
    source.close();
  }
  sourceUrl = url;
  source = new EventSource(url, {withCredentials: true});
  source.onopen = state;
  source.onerror = state;
  source.addEventListener("incident", (message) => {
    broadcast({type: "incident", data: message.data, id: message.lastEventId});
  });
}

function leave(port) {
  ports.delete(port);
  if (!ports.size && source) {
    source.close();
    source = null;
  }
}

self.onconnect = (connection) => {
  const port = connection.ports[0];
  port.onmessage = (message) => {
    if (message.data.type === "open") {
      ports.add(port);
      open(message.data.url);
      port.postMessage({type: "state", readyState: source.readyState});
    } else if (message.data.type === "close") {
      leave(port);
    }
  };
  port.start();
};
