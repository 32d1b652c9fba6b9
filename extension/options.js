import { DEFAULTS, withDefaults } from "./lib/options.js";

const form = document.getElementById("options");
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);

async function load() {
  const { options: stored } = await chrome.storage.local.get("options");
  const o = withDefaults(stored);
  form.origins.value = o.origins.join("\n");
  form.targets.value = o.targets.join("\n");
  form.daemonUrl.value = o.daemonUrl;
  form.otlpUrl.value = o.otlpUrl;
  form.serviceName.value = o.serviceName;
  form.token.value = o.token;
  for (const k of Object.keys(DEFAULTS.capture)) form[k].checked = o.capture[k];
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const { options: stored } = await chrome.storage.local.get("options");
  const capture = {};
  for (const k of Object.keys(DEFAULTS.capture)) capture[k] = form[k].checked;
  const next = withDefaults({
    ...stored,
    origins: lines(form.origins.value),
    targets: lines(form.targets.value),
    daemonUrl: form.daemonUrl.value.trim(),
    otlpUrl: form.otlpUrl.value.trim(),
    serviceName: form.serviceName.value.trim(),
    token: form.token.value,
    capture,
  });
  await chrome.storage.local.set({ options: next });
  document.getElementById("saved").textContent = "Saved; open pages pick it up at once.";
  await load();
});

load();
