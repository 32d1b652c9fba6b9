import { withDefaults } from "./lib/options.js";

const $ = (id) => document.getElementById(id);

async function refresh() {
  const s = await chrome.runtime.sendMessage({ type: "status" });
  const daemon = $("reachable");
  daemon.textContent = s.reachable ? `reachable at ${s.daemonUrl}` : `not reachable at ${s.daemonUrl}`;
  daemon.dataset.state = s.reachable ? "up" : "down";
  $("sent").textContent = `${s.sent.events} events, ${s.sent.spans} spans`;
  $("queued").textContent = `${s.queued} (${Math.round(s.queuedBytes / 1024)} KiB)`;
  $("dropped").textContent = String(s.dropped);
  $("error").hidden = !s.lastError || s.reachable;
  $("error").textContent = s.lastError || "";
  const refusing = [...new Set(s.refusingTargets)];
  $("refusing").hidden = !refusing.length;
  $("refusing").textContent = `No traceparent to ${refusing.join(", ")}: its CORS does not allow the header (allow it there to link its spans)`;
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("pause").dataset.paused = String(s.paused);
}

$("pause").addEventListener("click", async () => {
  const { options: stored } = await chrome.storage.local.get("options");
  const o = withDefaults(stored);
  await chrome.storage.local.set({ options: { ...o, paused: !o.paused } });
  await refresh();
});

refresh();
setInterval(refresh, 2000);
