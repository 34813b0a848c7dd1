// A browser app that verifies tokens with `@portcullis/sdk`, bundled by esbuild.test.mjs with
// esbuild's defaults for the browser (the package's default entry) and loaded in headless
// Chromium. esbuild does not follow `new URL(…, import.meta.url)`, so the app imports the
// package's `.wasm` through its `portcullis.wasm` export (esbuild's `file` loader copies it and
// gives its URL) and passes that to `init()`, as the README shows for such setups.
import { init } from "@portcullis/sdk";
import wasmUrl from "@portcullis/sdk/portcullis.wasm";

import { answer, verifierFor } from "./verify-app.mjs";

window.portcullis = init(wasmUrl).then(() => ({
  answer: (keys, token) => answer(verifierFor(keys), token),
}));
