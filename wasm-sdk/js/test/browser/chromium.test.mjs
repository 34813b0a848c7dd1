// The portable suite (suite.mjs) and the differential corpus (../differential/corpus.mjs) in
// headless Chromium, against the installed package's web entry served from a local static
// server. Each case the page ran becomes a subtest here; a failed case, a page error, a
// console error or a failed request fails the test.
//
// Chromium is /usr/bin/chromium (Debian's; PORTCULLIS_CHROMIUM overrides). Without it the test
// skips on a laptop but fails under PORTCULLIS_REQUIRE_SERVICES=1, as in CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { startStatic } from "./static.mjs";

const CHROMIUM = process.env.PORTCULLIS_CHROMIUM ?? "/usr/bin/chromium";
const REQUIRED = process.env.PORTCULLIS_REQUIRE_SERVICES === "1";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

// playwright-core is a devDependency of the package's sources, not of the temporary project
// the tests run in; scripts/test-browser.mjs names the sources' directory.
function playwright() {
  const from = process.env.PORTCULLIS_SDK_SOURCES;
  return from ? createRequire(join(from, "package.json"))("playwright-core") : undefined;
}

const missing = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM}`
  : !process.env.PORTCULLIS_CORPUS
    ? "PORTCULLIS_CORPUS is not set: run `npm run test:browser`"
    : undefined;

test("the suite and the corpus in headless Chromium", async (t) => {
  if (missing) {
    assert.ok(!REQUIRED, `${missing} (PORTCULLIS_REQUIRE_SERVICES=1)`);
    t.skip(missing);
    return;
  }
  const { chromium } = playwright() ?? (await import("playwright-core"));
  const sdkDir = dirname(fileURLToPath(import.meta.resolve("@portcullis/sdk/package.json")));
  const server = await startStatic({
    "/sdk/": sdkDir,
    "/test/": dirname(dirname(fileURLToPath(import.meta.url))),
    "/corpus.json": process.env.PORTCULLIS_CORPUS,
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const problems = [];
  let outcome;
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") {
        problems.push(`console error: ${message.text()}`);
      }
    });
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
    await page.goto(`${server.origin}/test/browser/harness.html`);
    await page.waitForFunction(() => window.portcullisResults, null, { timeout: 60_000 });
    outcome = await page.evaluate(() => window.portcullisResults);
    t.diagnostic(`${await browser.version()}: ${await page.textContent("#out")}`);
  } finally {
    await browser.close();
    await server.close();
  }

  assert.equal(outcome.error, undefined, `the page failed: ${outcome.error}`);
  assert.deepEqual(problems, []);
  const notFound = server.served.filter(({ status }) => status !== 200);
  assert.deepEqual(notFound, [], "every request the page made was served");
  const wasm = "/sdk/wasm/web/portcullis_wasm_sdk_bg.wasm";
  assert.ok(
    server.served.some(({ path }) => path === wasm),
    "init() fetched the web .wasm",
  );
  assert.ok(outcome.results.length > 60, `only ${outcome.results.length} cases ran`);
  for (const { name, ok, error } of outcome.results) {
    await t.test(name, () => assert.ok(ok, error));
  }
  const failed = outcome.results.filter(({ ok }) => !ok).length;
  t.diagnostic(`chromium: ${outcome.results.length - failed} passed, ${failed} failed`);
});
