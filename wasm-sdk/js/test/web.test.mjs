// The web entry on its own, loaded with the asynchronous init() (this file imports nothing
// that loads the Node entry, so the web glue does the work). Node cannot fetch the module by
// URL, so the bytes are handed over.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

import { PortcullisError, RevocationList, Verifier, init } from "@portcullis/sdk/web";

const ISSUER = "https://auth.portcullis.test";
const NOW = 1_767_225_600;
const SECRET = new TextEncoder().encode("portcullis-test-secret-of-32-by!");
const options = {
  issuer: ISSUER,
  audience: "api",
  keys: { hs256: [{ kid: "hs-1", secret: SECRET }] },
  clock: () => NOW * 1000,
};

function token(payload) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${b64({ alg: "HS256", kid: "hs-1", typ: "at+jwt" })}.${b64(payload)}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

test("not_initialized before init, working after init(bytes); init twice is harmless", async () => {
  assert.throws(
    () => new Verifier(options),
    (error) => error instanceof PortcullisError && error.code === "not_initialized",
  );
  const path = fileURLToPath(import.meta.resolve("@portcullis/sdk/portcullis.wasm"));
  await init(await readFile(path));
  await init(await readFile(path));
  const verifier = new Verifier({ ...options, revocations: new RevocationList() });
  const claims = verifier.verify(token({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW + 60 }));
  assert.equal(claims.sub, "usr_1");
  const other = token({ iss: ISSUER, sub: "usr_1", aud: "web", exp: NOW + 60 });
  assert.throws(
    () => verifier.verify(other),
    (error) => error.code === "token_audience_invalid",
  );
});
