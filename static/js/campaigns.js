// Campaign pages: when the websocket says a campaign's figures changed (`campaign.figures`, at most once a second
// per campaign), the figures block of that campaign's page asks the server for them again (htmx).
(function () {
  "use strict";
  document.addEventListener("leadflow:reconnected", function () {
    if (document.getElementById("campaign-live")) document.body.dispatchEvent(new CustomEvent("campaign-figures-changed"));
  });
  document.addEventListener("leadflow:event", function (e) {
    const live = document.getElementById("campaign-live");
    if (!live || !e.detail || e.detail.event !== live.dataset.liveEvent) return;
    const payload = e.detail.payload || {};
    if (String(payload.campaign_id) !== live.dataset.campaignId) return;
    document.body.dispatchEvent(new CustomEvent("campaign-figures-changed"));
  });
})();
