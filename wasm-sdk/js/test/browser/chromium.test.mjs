// The portable suite (suite.mjs) and the differential corpus (../differential/corpus.mjs) in
// headless Chromium, against the installed package's web entry served from a local static
// server. Each case the page ran becomes a subtest here; a failed case, a page error, a
// console error or a failed request fails the test.
//
// Chromium is /usr/bin/chromium (Debian's; PORTCULLIS_CHROMIUM overrides, see chromium.mjs).
// Without it the test skips on a laptop but fails under PORTCULLIS_REQUIRE_SERVICES=1, as in CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

import { REQUIRED, chromiumMissing, launchChromium, openPage } from "./chromium.mjs";
import { startStatic } from "./static.mjs";

const missing =
  chromiumMissing() ??
  (!process.env.PORTCULLIS_CORPUS
    ? "PORTCULLIS_CORPUS is not set: run `npm run test:browser`"
    : undefined);

test("the suite and the corpus in headless Chromium", async (t) => {
  if (missing) {
    assert.ok(!REQUIRED, `${missing} (PORTCULLIS_REQUIRE_SERVICES=1)`);
    t.skip(missing);
    return;
  }
  const sdkDir = dirname(fileURLToPath(import.meta.resolve("@portcullis/sdk/package.json")));
  const server = await startStatic({
    "/sdk/": sdkDir,
    "/test/": dirname(dirname(fileURLToPath(import.meta.url))),
    "/corpus.json": process.env.PORTCULLIS_CORPUS,
  });
  const browser = await launchChromium();
  let outcome;
  let problems;
  try {
    const opened = await openPage(browser, `${server.origin}/test/browser/harness.html`);
    const { page } = opened;
    problems = opened.problems;
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
