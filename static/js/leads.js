// The lead pages' behaviour on top of htmx: the list's bulk bar and live rows, the board's drag and drop, and
// live import progress. Listeners are delegated from `document`, so they keep working after htmx swaps.
(function () {
  "use strict";

  // Shared --------------------------------------------------------------------------------------------------------

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function urlFor(template, id) {
    // Pages carry a URL reversed with id 0 (e.g. /leads/0/row/); swap in the real id.
    const at = template.lastIndexOf("/0/");
    return template.slice(0, at) + "/" + encodeURIComponent(id) + "/" + template.slice(at + 3);
  }

  function htmlElement(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // Forms that ask first (plain posts; htmx forms use hx-confirm) ------------------------------------------------

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // List: selection and the bulk bar --------------------------------------------------------------------------------

  function bulkForm() {
    return document.querySelector("form[data-bulk-form]");
  }

  function refreshBulkBar() {
    const form = bulkForm();
    if (!form) return;
    const checks = Array.from(document.querySelectorAll("input[data-row-check]"));
    const selected = checks.filter(function (c) { return c.checked; }).length;
    const count = form.querySelector("[data-selected-count]");
    if (count) count.textContent = selected + " selected";
    form.querySelector("[data-bulk-bar]").classList.toggle("has-selection", selected > 0);
    const all = document.querySelector("input[data-select-all]");
    if (all) {
      all.checked = selected > 0 && selected === checks.length;
      all.indeterminate = selected > 0 && selected < checks.length;
    }
    const action = form.querySelector("[data-bulk-action]");
    form.querySelectorAll("[data-bulk-for]").forEach(function (input) {
      const wanted = input.dataset.bulkFor.split(" ").indexOf(action.value) !== -1;
      input.hidden = !wanted;
      input.disabled = !wanted;
    });
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target.matches("input[data-select-all]")) {
      document.querySelectorAll("input[data-row-check]").forEach(function (c) { c.checked = target.checked; });
    }
    if (target.matches("input[data-select-all], input[data-row-check], [data-bulk-action]")) refreshBulkBar();
  });

  document.addEventListener("htmx:confirm", function (event) {
    const form = event.target.closest && event.target.closest("form[data-bulk-form]");
    if (!form || form.querySelector("[data-bulk-action]").value !== "delete") return;
    event.preventDefault();
    const selected = document.querySelectorAll("input[data-row-check]:checked").length;
    if (window.confirm("Delete " + selected + " lead" + (selected === 1 ? "" : "s") + "? This cannot be undone.")) {
      event.detail.issueRequest(true);
    }
  });

  document.addEventListener("htmx:afterSettle", refreshBulkBar);
  document.addEventListener("DOMContentLoaded", refreshBulkBar);

  // List: live rows ---------------------------------------------------------------------------------------------------

  function liveTable() {
    return document.querySelector("table[data-lead-table][data-live='1']");
  }

  function anyTable() {
    return document.querySelector("table[data-lead-table]");
  }

  function fetchRow(table, id) {
    return fetch(urlFor(table.dataset.rowUrl, id), {
      credentials: "same-origin",
      headers: { "HX-Request": "true" },
    }).then(function (response) {
      if (response.status === 404) return null; // deleted, or not this member's to see
      if (!response.ok) throw new Error("row " + id + ": " + response.status);
      return response.text().then(htmlElement);
    });
  }

  function addRow(payload) {
    const table = liveTable();
    if (!table || document.getElementById("lead-" + payload.id)) return;
    const owner = table.dataset.liveOwner;
    if (owner && String(payload.owner_id) !== owner) return;
    fetchRow(table, payload.id).then(function (row) {
      if (!row || document.getElementById(row.id)) return;
      const body = table.tBodies[0];
      const empty = body.querySelector(".empty-row");
      if (empty) empty.remove();
      body.prepend(row);
      if (window.htmx) window.htmx.process(row);
    }).catch(function () { /* a missed live row shows on the next load */ });
  }

  function refreshRow(payload) {
    const table = anyTable();
    const current = document.getElementById("lead-" + payload.id);
    if (!table || !current) return;
    const wasChecked = current.querySelector("input[data-row-check]:checked") !== null;
    fetchRow(table, payload.id).then(function (row) {
      if (!row) { current.remove(); return; }
      const check = row.querySelector("input[data-row-check]");
      if (check) check.checked = wasChecked;
      current.replaceWith(row);
      if (window.htmx) window.htmx.process(row);
    }).catch(function () {});
  }

  // A bulk action sends one event per lead: collect them and refresh each row shown once.
  const pendingRefresh = new Map();
  let refreshTimer = null;

  function queueRefresh(payload) {
    if (!document.getElementById("lead-" + payload.id)) return;
    pendingRefresh.set(payload.id, payload);
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(function () {
      const queued = Array.from(pendingRefresh.values());
      pendingRefresh.clear();
      queued.forEach(refreshRow);
    }, 300);
  }

  function removeRow(payload) {
    const row = document.getElementById("lead-" + payload.id);
    if (row) row.remove();
    const card = document.getElementById("card-" + payload.id);
    if (card) {
      const column = card.closest(".board-column");
      card.remove();
      updateCount(column);
    }
  }

  // Board: drag and drop ----------------------------------------------------------------------------------------------

  let dragged = null;

  function updateCount(column) {
    if (!column) return;
    const badge = column.querySelector("[data-count]");
    if (!badge || badge.dataset.more) return; // "50+" stays "50+": the column holds only the newest
    badge.textContent = String(column.querySelectorAll(".board-card").length);
  }

  function showBoardError(message) {
    const box = document.getElementById("board-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    window.clearTimeout(showBoardError.timer);
    showBoardError.timer = window.setTimeout(function () { box.hidden = true; }, 8000);
  }

  function moveCard(card, column) {
    const from = card.closest(".board-column");
    if (!from || from === column) return;
    const board = column.closest("[data-board]");
    const list = column.querySelector(".board-cards");
    const originList = card.parentElement;
    const originNext = card.nextElementSibling;
    // Optimistic: the card moves now and goes back if the server says no.
    list.prepend(card);
    updateCount(from);
    updateCount(column);
    card.classList.add("is-saving");
    const body = new URLSearchParams({ stage: column.dataset.stageId });
    fetch(urlFor(board.dataset.moveUrl, card.dataset.leadId), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: body,
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || (response.status === 404
            ? "This lead is no longer yours to move (or was deleted)."
            : "The lead could not be moved (" + response.status + ")."));
        }
        card.classList.add("is-moved");
        window.setTimeout(function () { card.classList.remove("is-moved"); }, 1200);
      });
    }).catch(function (error) {
      originList.insertBefore(card, originNext && originNext.parentElement === originList ? originNext : null);
      updateCount(from);
      updateCount(column);
      showBoardError(error.message || "The lead could not be moved.");
    }).finally(function () {
      card.classList.remove("is-saving");
    });
  }

  document.addEventListener("dragstart", function (event) {
    const card = event.target.closest && event.target.closest(".board-card[draggable=true]");
    if (!card) return;
    dragged = card;
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.leadId);
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("is-dragging");
    dragged = null;
    document.querySelectorAll(".board-column.is-drop-target").forEach(function (c) { c.classList.remove("is-drop-target"); });
  });

  document.addEventListener("dragover", function (event) {
    const column = dragged && event.target.closest && event.target.closest(".board-column");
    if (!column) return;
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "move";
    column.classList.add("is-drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    const column = event.target.closest && event.target.closest(".board-column");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("is-drop-target");
  });

  document.addEventListener("drop", function (event) {
    const column = dragged && event.target.closest && event.target.closest(".board-column");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("is-drop-target");
    moveCard(dragged, column);
  });

  // Imports: live progress --------------------------------------------------------------------------------------------

  function importProgress(payload) {
    const box = document.querySelector('[data-import-id="' + payload.id + '"]');
    if (!box) return;
    const bar = box.querySelector("progress");
    if (bar) bar.value = payload.percent;
    ["processed", "total", "created", "duplicates", "errors"].forEach(function (name) {
      const field = box.querySelector('[data-field="' + name + '"]');
      if (field && payload[name] !== undefined) field.textContent = payload[name];
    });
    if ((payload.status === "completed" || payload.status === "failed") && window.htmx) {
      // The final state (counts, error report link) comes from the server, and stops the polling.
      window.htmx.ajax("GET", box.dataset.statusUrl, { target: box, swap: "outerHTML" });
    }
  }

  // Live events -------------------------------------------------------------------------------------------------------

  document.addEventListener("leadflow:event", function (event) {
    const detail = event.detail || {};
    const payload = detail.payload || {};
    switch (detail.event) {
      case "lead.created":
      case "lead.duplicate":
        addRow(payload);
        break;
      case "lead.updated":
      case "lead.assigned":
        queueRefresh(payload);
        break;
      case "lead.deleted":
        removeRow(payload);
        break;
      case "import.progress":
        importProgress(payload);
        break;
      default:
        break;
    }
  });
})();
