// Live updates: one websocket per page to /ws/events/. Every server event is re-dispatched on `document` as a
// `leadflow:event` CustomEvent (detail = {event, payload}) so any page can listen; the dashboard feed and the
// toasts below are two such listeners. Reconnects with capped exponential backoff; events sent while a socket was
// down are not replayed, so a socket that opens again after one was lost dispatches `leadflow:reconnected` and the
// live parts of the page (inbox, badges, campaign figures) fetch their state again.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  const CLOSE_UNAUTHENTICATED = 4401;
  const CLOSE_NO_ORGANIZATION = 4403;
  let attempt = 0;
  let pingTimer = null;
  let wasOpen = false;

  function setStatus(state, label) {
    if (!status) return;
    status.dataset.state = state;
    status.querySelector("span").textContent = label;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws/events/`);
    setStatus("connecting", "connecting");

    socket.addEventListener("open", function () {
      attempt = 0;
      setStatus("open", "live");
      if (wasOpen) document.dispatchEvent(new CustomEvent("leadflow:reconnected"));
      wasOpen = true;
      pingTimer = window.setInterval(function () { socket.send(JSON.stringify({ type: "ping" })); }, 25000);
    });
    socket.addEventListener("message", function (message) {
      let data;
      try { data = JSON.parse(message.data); } catch (error) { return; }
      document.dispatchEvent(new CustomEvent("leadflow:event", { detail: data }));
    });
    socket.addEventListener("close", function (closed) {
      window.clearInterval(pingTimer);
      if (closed.code === CLOSE_UNAUTHENTICATED || closed.code === CLOSE_NO_ORGANIZATION) {
        setStatus("closed", "offline");
        return;
      }
      setStatus("closed", "reconnecting");
      attempt += 1;
      window.setTimeout(connect, Math.min(30000, 500 * 2 ** attempt));
    });
  }

  function describe(detail) {
    const payload = detail.payload || {};
    const name = payload.name || payload.email || payload.title || "";
    return name ? `${detail.event}: ${name}` : detail.event;
  }

  document.addEventListener("leadflow:event", function (e) {
    if (e.detail.event === "connected" || e.detail.event === "pong") return;
    // Refresh signals (a campaign's figures changed) are for the pages that listen, not the feed or a toast.
    if (e.detail.payload && e.detail.payload.quiet) return;
    const feed = document.getElementById("live-feed");
    if (feed) {
      const empty = feed.querySelector(".empty");
      if (empty) empty.remove();
      const item = document.createElement("li");
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = e.detail.event;
      item.append(badge, " ", describe(e.detail).replace(`${e.detail.event}: `, ""), " ");
      const when = document.createElement("small");
      when.className = "muted";
      when.textContent = new Date().toLocaleTimeString();
      item.append(when);
      feed.prepend(item);
      while (feed.children.length > 20) feed.lastElementChild.remove();
    }
    const toasts = document.getElementById("toasts");
    if (toasts) {
      const toast = document.createElement("div");
      toast.className = "toast";
      toast.textContent = describe(e.detail);
      toasts.append(toast);
      window.setTimeout(function () { toast.remove(); }, 5000);
    }
  });

  connect();
})();
