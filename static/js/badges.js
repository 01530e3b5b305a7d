// The unread counts in the navigation (inbox) and the bell: fetched once with htmx and again whenever the websocket
// says a message, a conversation or a notification changed.
(function () {
  "use strict";
  const REFRESH_ON = new Set(["message.created", "conversation.updated", "notification.created", "notification.read"]);
  let pending = null;
  document.addEventListener("leadflow:reconnected", function () {
    if (window.htmx) window.htmx.trigger(document.body, "badges");
  });
  document.addEventListener("leadflow:event", function (e) {
    if (!REFRESH_ON.has(e.detail.event) || !window.htmx) return;
    window.clearTimeout(pending);
    pending = window.setTimeout(function () { window.htmx.trigger(document.body, "badges"); }, 100);
  });
})();
