// Runs the portable suite and the differential corpus in the page against the package's web
// entry, loaded with `init()` (which fetches the .wasm next to it), and leaves the outcome in
// `window.portcullisResults` for chromium.test.mjs to collect.
import * as sdk from "/sdk/esm/web.js";

import { differential } from "../differential/corpus.mjs";
import { suite } from "./suite.mjs";

async function runAll(group, cases) {
  const results = [];
  for (const [name, run] of cases) {
    try {
      await run();
      results.push({ name: `${group}: ${name}`, ok: true });
    } catch (error) {
      results.push({ name: `${group}: ${name}`, ok: false, error: String(error?.stack ?? error) });
    }
  }
  return results;
}

async function main() {
  await sdk.init();
  const corpus = await (await fetch("/corpus.json")).json();
  return [
    ...(await runAll("chromium", await suite(sdk))),
    ...(await runAll("chromium differential", differential(sdk, corpus))),
  ];
}

const out = document.getElementById("out");
main().then(
  (results) => {
    const failed = results.filter((result) => !result.ok).length;
    out.textContent = `${results.length - failed} passed, ${failed} failed`;
    window.portcullisResults = { results };
  },
  (error) => {
    out.textContent = `error: ${error}`;
    window.portcullisResults = { error: String(error?.stack ?? error) };
  },
);
