// The package in a bundler: app.mjs, which imports `@portcullis/sdk` (the packed package,
// installed in the test project), is bundled with esbuild for the browser (the default export
// condition) and the bundle, with the `.wasm` esbuild copied, is loaded from a local static
// server in headless Chromium. Node hands the page tokens and checks its answers, and that
// the bundle holds the web entry and the page fetched nothing but the bundle's own files.
//
// esbuild and playwright-core are exact-pinned devDependencies of the package's sources
// (PORTCULLIS_SDK_SOURCES, set by scripts/test-browser.mjs); Chromium is Debian's. Without one
// of them the test skips on a laptop but fails under PORTCULLIS_REQUIRE_SERVICES=1, as in CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import {
  REQUIRED,
  chromiumMissing,
  devDependency,
  launchChromium,
  openPage,
} from "../browser/chromium.mjs";
import { startStatic } from "../browser/static.mjs";
import { KEYS, cases } from "./cases.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const esbuild = devDependency("esbuild");
const missing = !esbuild
  ? "esbuild is not installed in PORTCULLIS_SDK_SOURCES: run `npm run test:browser`"
  : chromiumMissing();

/** Bundles app.mjs into `outdir` for browsers: esbuild's defaults plus a `file` loader for `.wasm`. */
async function bundleApp(outdir) {
  const result = await esbuild.build({
    entryPoints: [join(here, "app.mjs")],
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    loader: { ".wasm": "file" },
    assetNames: "assets/[name]-[hash]",
    metafile: true,
    logLevel: "silent",
  });
  writeFileSync(
    join(outdir, "index.html"),
    '<!doctype html><html><head><link rel="icon" href="data:,"></head>' +
      '<body><script type="module" src="./app.js"></script></body></html>\n',
  );
  return Object.keys(result.metafile.inputs);
}

test("a browser app bundled with esbuild verifies tokens in headless Chromium", async (t) => {
  if (missing) {
    assert.ok(!REQUIRED, `${missing} (PORTCULLIS_REQUIRE_SERVICES=1)`);
    t.skip(missing);
    return;
  }
  const outdir = mkdtempSync(join(tmpdir(), "portcullis-sdk-bundle-"));
  let server;
  let browser;
  try {
    const inputs = await bundleApp(outdir);
    const sdk = "node_modules/@portcullis/sdk/";
    const entries = inputs.filter((input) => input.includes(`${sdk}esm/`));
    assert.ok(
      entries.some((input) => input.endsWith(`${sdk}esm/web.js`)),
      `the web entry of the installed package was bundled: ${entries.join(", ")}`,
    );
    for (const other of ["workerd.js", "node.js"]) {
      assert.ok(!entries.some((input) => input.endsWith(`esm/${other}`)), `esm/${other} bundled`);
    }
    const assets = readdirSync(join(outdir, "assets"));
    assert.equal(assets.length, 1, `one asset, the .wasm: ${assets.join(", ")}`);
    assert.match(assets[0], /^portcullis_wasm_sdk_bg-\w+\.wasm$/);

    server = await startStatic({ "/": outdir });
    browser = await launchChromium();
    const { page, problems } = await openPage(browser, `${server.origin}/index.html`);
    await page.waitForFunction(() => window.portcullis, null, { timeout: 30_000 });
    await page.evaluate(() => window.portcullis);
    for (const [name, token, expected] of cases()) {
      await t.test(name, async () => {
        const verdict = await page.evaluate(
          async ([keys, jwt]) => (await window.portcullis).answer(keys, jwt),
          [KEYS, token],
        );
        assert.deepEqual(verdict, expected);
      });
    }
    assert.deepEqual(problems, []);
    const files = server.served.map(({ path, status }) => `${status} ${path}`).sort();
    const wasm = `/assets/${assets[0]}`;
    assert.deepEqual(files, ["200 /app.js", `200 ${wasm}`, "200 /index.html"]);
    t.diagnostic(`${await browser.version()}: bundle ${inputs.length} inputs, served ${files}`);
  } finally {
    await browser?.close();
    await server?.close();
    rmSync(outdir, { recursive: true, force: true });
  }
});
