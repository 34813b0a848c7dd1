// The CommonJS entry: `require("@portcullis/sdk")` must load synchronously and behave like the
// ES module entry.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { createHmac } = require("node:crypto");

const sdk = require("@portcullis/sdk");

const ISSUER = "https://auth.portcullis.test";
const NOW = 1_767_225_600;
const SECRET = Buffer.from("portcullis-test-secret-of-32-by!");

function token(payload) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${b64({ alg: "HS256", kid: "hs-1", typ: "at+jwt" })}.${b64(payload)}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

const verifier = new sdk.Verifier({
  issuer: ISSUER,
  audience: "api",
  keys: { hs256: [{ kid: "hs-1", secret: new Uint8Array(SECRET) }] },
  clock: () => NOW * 1000,
});

test("require() verifies a token and throws PortcullisError with the core's code", () => {
  const claims = verifier.verify(token({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW + 60 }));
  assert.equal(claims.sub, "usr_1");
  assert.deepEqual(claims.perms, []);
  const expired = token({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW - 60 });
  assert.throws(
    () => verifier.verify(expired),
    (error) => error instanceof sdk.PortcullisError && error.code === "token_expired",
  );
  assert.ok(sdk.hasPermission(["users:*"], "users:read"));
});

test("require() and import expose the same API", async () => {
  const esm = await import("@portcullis/sdk");
  const names = (module) =>
    Object.keys(module)
      .filter((name) => name !== "default")
      .sort();
  assert.deepEqual(names(sdk), names(esm));
  assert.deepEqual(names(sdk), [
    "JwksCache",
    "JwksVerifier",
    "PortcullisError",
    "RevocationFeed",
    "RevocationList",
    "Verifier",
    "hasAll",
    "hasAny",
    "hasPermission",
  ]);
});

test("the CommonJS build loads the nodejs wasm glue, not the ES module one", () => {
  const entry = require.resolve("@portcullis/sdk");
  assert.match(entry, /[/\\]cjs[/\\]node\.js$/);
});
