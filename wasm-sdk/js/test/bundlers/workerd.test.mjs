// The package in Cloudflare Workers: worker.mjs, which imports `@portcullis/sdk` (the packed
// package, installed in the test project), is bundled with esbuild the way wrangler bundles a
// Worker (the `workerd` export condition; `.wasm` imports left to the runtime as compiled
// modules) and run in real workerd through Miniflare. Node sends it tokens and checks the
// answers: the verdicts, the error codes, and that the `workerd` entry was the one bundled.
//
// esbuild and miniflare (which brings workerd) are exact-pinned devDependencies of the
// package's sources (PORTCULLIS_SDK_SOURCES, set by scripts/test-browser.mjs). Without them
// the test skips on a laptop but fails under PORTCULLIS_REQUIRE_SERVICES=1, as in CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { REQUIRED, devDependency } from "../browser/chromium.mjs";
import { KEYS, cases } from "./cases.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const esbuild = devDependency("esbuild");
const miniflare = devDependency("miniflare");
const missing = !esbuild
  ? "esbuild is not installed in PORTCULLIS_SDK_SOURCES: run `npm run test:browser`"
  : !miniflare
    ? "miniflare is not installed in PORTCULLIS_SDK_SOURCES: run `npm run test:browser`"
    : undefined;
/** A date the pinned workerd supports (miniflare 4.20260426.0: up to 2026-04-26). */
const COMPATIBILITY_DATE = "2026-04-01";

/**
 * Bundles worker.mjs into `outdir` as wrangler 4 does: ESM, the `workerd` and `worker`
 * conditions before `browser`, and each `.wasm` import kept as an import of a module file
 * copied next to the bundle, for workerd to load as a compiled `WebAssembly.Module`.
 */
async function bundleWorker(outdir) {
  const wasm = [];
  const result = await esbuild.build({
    entryPoints: [join(here, "worker.mjs")],
    outfile: join(outdir, "worker.mjs"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    metafile: true,
    logLevel: "silent",
    plugins: [
      {
        name: "compiled-wasm",
        setup(build) {
          build.onResolve({ filter: /\.wasm$/ }, (args) => {
            const file = resolve(args.resolveDir, args.path);
            copyFileSync(file, join(outdir, basename(file)));
            wasm.push(file);
            return { path: `./${basename(file)}`, external: true };
          });
        },
      },
    ],
  });
  return { inputs: Object.keys(result.metafile.inputs), wasm };
}

test("a Worker bundled with the package verifies tokens in workerd (Miniflare)", async (t) => {
  if (missing) {
    assert.ok(!REQUIRED, `${missing} (PORTCULLIS_REQUIRE_SERVICES=1)`);
    t.skip(missing);
    return;
  }
  const outdir = mkdtempSync(join(tmpdir(), "portcullis-sdk-worker-"));
  let mf;
  try {
    const { inputs, wasm } = await bundleWorker(outdir);
    const sdk = "node_modules/@portcullis/sdk/";
    const entries = inputs.filter((input) => input.includes(`${sdk}esm/`));
    assert.ok(
      entries.some((input) => input.endsWith(`${sdk}esm/workerd.js`)),
      `the workerd entry of the installed package was bundled: ${entries.join(", ")}`,
    );
    for (const other of ["web.js", "node.js"]) {
      assert.ok(!entries.some((input) => input.endsWith(`esm/${other}`)), `esm/${other} bundled`);
    }
    assert.deepEqual(
      wasm.map((file) => file.slice(file.lastIndexOf(sdk))),
      [`${sdk}wasm/web/portcullis_wasm_sdk_bg.wasm`],
      "the Worker imports the package's .wasm as one compiled module",
    );

    mf = new miniflare.Miniflare({
      modulesRoot: outdir,
      modules: [
        { type: "ESModule", path: join(outdir, "worker.mjs") },
        { type: "CompiledWasm", path: join(outdir, basename(wasm[0])) },
      ],
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: { HS_KID: KEYS.hsKid, HS_SECRET: KEYS.hsSecret, JWKS: JSON.stringify(KEYS.jwks) },
    });
    for (const [name, token, expected] of cases()) {
      await t.test(name, async () => {
        const response = await mf.dispatchFetch("http://worker.test/", {
          headers: { authorization: `Bearer ${token}` },
        });
        const { runtime, ...verdict } = await response.json();
        assert.equal(runtime, "Cloudflare-Workers", "answered by workerd");
        assert.equal(response.status, expected.ok ? 200 : 401);
        assert.deepEqual(verdict, expected);
      });
    }
  } finally {
    await mf?.dispose();
    rmSync(outdir, { recursive: true, force: true });
  }
});
