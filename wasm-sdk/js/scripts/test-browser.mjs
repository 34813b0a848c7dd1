// The tests beyond the Node suites, against the packed package like scripts/test.mjs:
// - test/browser: the portable behaviour suite in Node and in headless Chromium (the web
//   entry, served from a local static server);
// - test/differential: the differential corpus in Node (and, through test/browser, in
//   Chromium), held to the verdicts, error codes and claims of the native core;
// - test/bundlers: the package bundled by esbuild into a Cloudflare Worker (the `workerd`
//   entry) run in workerd through Miniflare, and into a browser app run in Chromium.
// The corpus is written first by the native `portcullis-core` (`cargo run --example corpus`),
// so the expectations are the core's own at test time. Run `npm run build` first.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const js = dirname(dirname(fileURLToPath(import.meta.url)));
const scratch = mkdtempSync(join(tmpdir(), "portcullis-sdk-corpus-"));
const corpus = join(scratch, "corpus.json");

function run(command, args, options) {
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.error || result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed: ${result.error ?? result.status}`);
  }
}

try {
  const started = Date.now();
  run(
    "cargo",
    [
      "run",
      "--quiet",
      "--locked",
      "-p",
      "portcullis-wasm-sdk",
      "--example",
      "corpus",
      "--",
      corpus,
    ],
    { cwd: join(js, "..", "..") },
  );
  console.log(`test-browser: the native core wrote the corpus in ${Date.now() - started} ms`);
  run(
    process.execPath,
    [join(js, "scripts", "test.mjs"), "test/browser", "test/differential", "test/bundlers"],
    {
      cwd: js,
      env: { ...process.env, PORTCULLIS_CORPUS: corpus, PORTCULLIS_SDK_SOURCES: js },
    },
  );
} catch (error) {
  console.error(`test-browser: ${error.message}`);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
