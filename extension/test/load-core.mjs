// page/core.js is a classic script (content scripts cannot be modules): run it in a vm
// context with the globals a page has, and hand back what it defines.
import { readFileSync } from "node:fs";
import vm from "node:vm";

export function loadCore() {
  const context = vm.createContext({ crypto: globalThis.crypto, URL });
  vm.runInContext(readFileSync(new URL("../page/core.js", import.meta.url), "utf8"), context);
  return context.__gasolineCore;
}
