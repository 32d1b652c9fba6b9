// The isolated-world relay: hands the page script its options and carries its batches
// to the service worker. The worker, not the page, decides whether this origin is
// traced (it reads the sender's origin from Chrome, which a page cannot forge).
"use strict";
(() => {
  const held = []; // batches recorded before the worker answered; bounded
  let enabled = null;

  function deliver(detail) {
    // Fails when the extension was reloaded or updated under this page: its data is lost.
    try {
      chrome.runtime.sendMessage({ type: "items", items: detail }).catch(() => {});
    } catch (err) {
      enabled = false;
    }
  }
  async function configure() {
    let answer;
    try {
      answer = await chrome.runtime.sendMessage({ type: "config" });
    } catch (err) {
      return;
    }
    if (!answer) return;
    enabled = answer.enabled;
    window.dispatchEvent(new CustomEvent("gasoline:config", { detail: JSON.stringify(answer) }));
    const batches = held.splice(0);
    if (enabled) batches.forEach(deliver);
  }
  window.addEventListener("gasoline:page", (e) => {
    if (typeof e.detail !== "string") return;
    if (enabled === null) {
      if (held.length < 200) held.push(e.detail);
    } else if (enabled) {
      deliver(e.detail);
    }
  });
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && (changes.options || changes.probes)) configure();
  });
  configure();
})();
