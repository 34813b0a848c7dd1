// The web entry on its own, loaded with the asynchronous init() (this file imports nothing
// that loads the Node entry, so the web glue does the work). Node cannot fetch the module by
// URL, so the bytes are handed over.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

import { PortcullisError, RevocationList, Verifier, init } from "@portcullis/sdk/web";

import { HS_KID, ISSUER, NOW, SECRET, hs256 } from "./tokens.mjs";

const options = {
  issuer: ISSUER,
  audience: "api",
  keys: { hs256: [{ kid: HS_KID, secret: SECRET }] },
  clock: () => NOW * 1000,
};

test("not_initialized before init, working after init(bytes); init twice is harmless", async () => {
  assert.throws(
    () => new Verifier(options),
    (error) => error instanceof PortcullisError && error.code === "not_initialized",
  );
  const path = fileURLToPath(import.meta.resolve("@portcullis/sdk/portcullis.wasm"));
  await init(await readFile(path));
  await init(await readFile(path));
  const verifier = new Verifier({ ...options, revocations: new RevocationList() });
  const claims = verifier.verify(hs256({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW + 60 }));
  assert.equal(claims.sub, "usr_1");
  const other = hs256({ iss: ISSUER, sub: "usr_1", aud: "web", exp: NOW + 60 });
  assert.throws(
    () => verifier.verify(other),
    (error) => error.code === "token_audience_invalid",
  );
});
