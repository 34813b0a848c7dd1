// The web entry's loading failures, and init() without arguments in Node (this file imports
// nothing that loads the Node entry): a bad source is a PortcullisError, never a raw
// TypeError or WebAssembly.CompileError, and the package's own file: URL is read from disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { PortcullisError, RevocationList, init, initSync } from "@portcullis/sdk/web";

function refused(code, text) {
  return (error) => {
    assert.ok(error instanceof PortcullisError, `not a PortcullisError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, text);
    return true;
  };
}

test("initSync without a module is config_invalid; with bad bytes wasm_load_failed", () => {
  assert.throws(() => initSync(), refused("config_invalid", /^initSync: /));
  assert.throws(() => initSync("portcullis.wasm"), refused("config_invalid", /^initSync: /));
  assert.throws(() => initSync(new Uint8Array(8)), refused("wasm_load_failed", /^initSync: /));
  assert.throws(() => new RevocationList(), refused("not_initialized", /init/));
});

test("init with bad bytes or a missing file is wasm_load_failed", async () => {
  await assert.rejects(init(new Uint8Array(8)), refused("wasm_load_failed", /^init: /));
  const missing = new URL("./no-such.wasm", import.meta.url);
  await assert.rejects(init(missing), refused("wasm_load_failed", /no such file/));
  await assert.rejects(init(missing.href), refused("wasm_load_failed", /no such file/));
  assert.throws(() => new RevocationList(), refused("not_initialized", /init/));
});

test("init() without arguments loads the package's own file in Node", async () => {
  await init();
  assert.equal(new RevocationList().size, 0);
});

test("the web entry has no static node: import", () => {
  const entry = readFileSync(new URL(import.meta.resolve("@portcullis/sdk/web")), "utf8");
  assert.doesNotMatch(entry, /^\s*import[^()]*["']node:/m);
  assert.doesNotMatch(entry, /from\s*["']node:/);
});
