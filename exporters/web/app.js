// The page's router: one HTML shell, a module per page, chosen by the path.
import { clear, el, errorBox } from "./dom.js";

const pages = [
  [/^\/$/, "list", () => import("./list.js")],
  [/^\/traces\/([^/]+)$/, "list", () => import("./trace.js")],
  [/^\/timeline$/, "timeline", () => import("./timeline.js")],
  [/^\/services$/, "services", () => import("./services.js")],
  [/^\/compare$/, "compare", () => import("./compare.js")],
  [/^\/reports$/, "reports", () => import("./reports.js")],
  [/^\/reports\/([^/]+)$/, "reports", () => import("./report.js")],
];

async function start() {
  const main = document.getElementById("main");
  for (const [pattern, nav, load] of pages) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    try {
      const module = await load();
      await module.render(clear(main), ...match.slice(1).map(decodeURIComponent));
    } catch (error) {
      clear(main).append(errorBox(error));
    }
    return;
  }
  clear(main).append(el("p", {}, "No such page."));
}

start();
