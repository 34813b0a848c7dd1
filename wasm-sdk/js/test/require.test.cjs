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
    "init",
    "initSync",
  ]);
});

test("init() and initSync() do nothing, so code written for the web entry runs", async () => {
  await sdk.init();
  await sdk.init("https://cdn.example/portcullis.wasm");
  sdk.initSync(new Uint8Array(8));
  const esm = await import("@portcullis/sdk");
  await esm.init();
  esm.initSync(new Uint8Array(8));
  assert.ok(verifier.verify(token({ iss: ISSUER, sub: "usr_1", aud: "api", exp: NOW + 60 })));
});

test("instanceof PortcullisError holds across the CommonJS and ES module copies", async () => {
  const esm = await import("@portcullis/sdk");
  assert.notEqual(esm.PortcullisError, sdk.PortcullisError, "two copies of the class");
  const fromCjs = new sdk.PortcullisError("token_expired", "x");
  const fromEsm = new esm.PortcullisError("token_expired", "x");
  assert.ok(fromCjs instanceof esm.PortcullisError);
  assert.ok(fromEsm instanceof sdk.PortcullisError);
  assert.ok(fromEsm instanceof Error);
  assert.ok(!(new Error("x") instanceof sdk.PortcullisError));
  assert.ok(!({ code: "token_expired" } instanceof esm.PortcullisError));
  class Special extends sdk.PortcullisError {}
  assert.ok(new Special("token_expired", "x") instanceof sdk.PortcullisError);
  assert.ok(!(fromCjs instanceof Special), "subclasses keep the prototype check");
});

test("a RevocationList of the other copy is refused with config_invalid, not misused", async () => {
  const esm = await import("@portcullis/sdk");
  const options = {
    issuer: ISSUER,
    audience: "api",
    keys: { hs256: [{ kid: "hs-1", secret: new Uint8Array(SECRET) }] },
  };
  assert.throws(
    () => new sdk.Verifier({ ...options, revocations: new esm.RevocationList() }),
    (error) =>
      error instanceof sdk.PortcullisError &&
      error.code === "config_invalid" &&
      /same copy/.test(error.message),
  );
});

test("the CommonJS build loads the nodejs wasm glue, not the ES module one", () => {
  const entry = require.resolve("@portcullis/sdk");
  assert.match(entry, /[/\\]cjs[/\\]node\.js$/);
});
