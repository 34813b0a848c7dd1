// How the browser tests find and start headless Chromium, shared by chromium.test.mjs and
// ../bundlers/esbuild.test.mjs.
//
// Chromium is /usr/bin/chromium (Debian's; PORTCULLIS_CHROMIUM overrides). The tools the
// tests drive (playwright-core, esbuild, miniflare) are exact-pinned devDependencies of the
// package's sources, not of the temporary project the tests run in: scripts/test-browser.mjs
// names the sources' directory in PORTCULLIS_SDK_SOURCES.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const CHROMIUM = process.env.PORTCULLIS_CHROMIUM ?? "/usr/bin/chromium";
/** Whether a missing tool fails the test instead of skipping it (as in CI). */
export const REQUIRED = process.env.PORTCULLIS_REQUIRE_SERVICES === "1";
export const CHROMIUM_ARGS = [
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

/** The devDependency `name` of the package's sources, or undefined when it is not there. */
export function devDependency(name) {
  const from = process.env.PORTCULLIS_SDK_SOURCES;
  if (!from) {
    return undefined;
  }
  try {
    return createRequire(join(from, "package.json"))(name);
  } catch {
    return undefined;
  }
}

/** Why Chromium cannot be started here, or undefined when it can. */
export function chromiumMissing() {
  if (!existsSync(CHROMIUM)) {
    return `no Chromium at ${CHROMIUM}`;
  }
  if (!devDependency("playwright-core")) {
    return "playwright-core is not installed in PORTCULLIS_SDK_SOURCES: run `npm run test:browser`";
  }
  return undefined;
}

/** Starts headless Chromium through playwright-core. */
export function launchChromium() {
  const { chromium } = devDependency("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Opens `url` in a new page of `browser` and collects what went wrong on it: page errors,
 * console errors and failed requests, into the returned `problems`.
 */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));
  await page.goto(url);
  return { page, problems };
}
