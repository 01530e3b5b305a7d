// The inbox, live: when the websocket says a message arrived, a conversation changed or a status moved on, the
// list is fetched again (it keeps its filters) and so is the open thread; status ticks change in place.
(function () {
  "use strict";
  const inbox = document.querySelector("[data-testid=inbox]");
  if (!inbox || !window.htmx) return;
  const filters = document.getElementById("inbox-filters");
  let pending = null;

  function openConversation() {
    const thread = document.querySelector("#thread-pane .thread");
    return thread ? thread.dataset.conversation : null;
  }

  function refreshList() {
    const params = new URLSearchParams(new FormData(filters)).toString();
    const current = openConversation();
    window.htmx.ajax("GET", `${inbox.dataset.listUrl}?${params}${current ? `&current=${current}` : ""}`, { target: "#conversation-list", swap: "outerHTML" });
  }

  function refreshThread(id) {
    const read = document.visibilityState === "visible" ? "1" : "0";
    const draft = document.querySelector("#reply-form textarea");
    if (draft && draft.value.trim()) {
      // Never throw away what someone is typing: only add the new messages.
      window.htmx.ajax("GET", `${inbox.dataset.threadUrl}${id}/?read=${read}`, { target: "#thread-messages", select: "#thread-messages", swap: "outerHTML" });
    } else {
      window.htmx.ajax("GET", `${inbox.dataset.threadUrl}${id}/?read=${read}`, { target: "#thread-pane", swap: "innerHTML" });
    }
  }

  document.addEventListener("leadflow:event", function (e) {
    const { event, payload } = e.detail;
    if (event === "message.status") {
      const tick = document.querySelector(`[data-message-status="${payload.id}"]`);
      if (tick) { tick.textContent = payload.status.charAt(0).toUpperCase() + payload.status.slice(1); tick.className = `status status-${payload.status}`; }
      return;
    }
    if (event !== "message.created" && event !== "conversation.updated") return;
    const conversationId = String(event === "message.created" ? payload.message.conversation_id : payload.id);
    window.clearTimeout(pending);
    pending = window.setTimeout(function () {
      refreshList();
      if (event === "message.created" && openConversation() === conversationId) refreshThread(conversationId);
    }, 50);
  });

  document.body.addEventListener("inbox-changed", refreshList);
  // Messages that arrived while the socket was down were never pushed: fetch the list and the open thread again.
  document.addEventListener("leadflow:reconnected", function () {
    refreshList();
    const current = openConversation();
    if (current) refreshThread(current);
  });
  document.addEventListener("click", function (e) {
    const button = e.target.closest("[data-use-suggestion]");
    if (!button) return;
    const form = document.getElementById("reply-form");
    form.querySelector("textarea").value = button.dataset.text;
    form.querySelector("input[name=suggestion]").value = button.dataset.useSuggestion;
    form.querySelector("textarea").focus();
  });
})();
