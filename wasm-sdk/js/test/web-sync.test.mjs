// The web entry on its own (this file imports nothing that loads the Node entry): before
// initSync() every constructor throws `not_initialized`; after it, the web glue does the work.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
  PortcullisError,
  RevocationList,
  Verifier,
  hasPermission,
  initSync,
} from "@portcullis/sdk/web";

import { HS_KID, ISSUER, NOW, SECRET, hs256 } from "./tokens.mjs";

const options = {
  issuer: ISSUER,
  audience: "api",
  keys: { hs256: [{ kid: HS_KID, secret: SECRET }] },
  clock: () => NOW * 1000,
};

test("not_initialized before initSync, working after it with a compiled module", () => {
  const uninitialized = (error) =>
    error instanceof PortcullisError && error.code === "not_initialized";
  assert.throws(() => new Verifier(options), uninitialized);
  assert.throws(() => new RevocationList(), uninitialized);
  assert.throws(() => hasPermission(["*"], "a:b"), uninitialized);

  const path = fileURLToPath(import.meta.resolve("@portcullis/sdk/portcullis.wasm"));
  initSync(new WebAssembly.Module(readFileSync(path)));
  const verifier = new Verifier(options);
  const claims = verifier.verify(hs256({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW + 60 }));
  assert.equal(claims.sub, "usr_1");
  const expired = hs256({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW - 60 });
  assert.throws(
    () => verifier.verify(expired),
    (error) => error.code === "token_expired",
  );
  assert.ok(hasPermission(["users:*"], "users:read"));
});
