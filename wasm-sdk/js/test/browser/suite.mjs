// The SDK's behaviour suite in a portable form: the same cases run under node:test in Node
// (node.test.mjs) and in headless Chromium (chromium.test.mjs, through harness.html). It
// imports nothing from `node:` and mints its tokens with WebCrypto (`crypto.subtle`) only, so
// it runs unchanged in both. The Node-only suites (verify.test.mjs and the others) go deeper;
// this one covers each behaviour a browser user relies on once.
//
// `suite(sdk)` takes the loaded SDK module (the Node entry, or the web entry after `init()`)
// and resolves to `[name, run]` pairs; `run` throws on failure.

export const ISSUER = "https://auth.portcullis.test";
export const AUDIENCE = "portcullis";
/** The fixed time of the suite, 2026-01-01T00:00:00Z, in milliseconds. */
export const NOW_MS = Date.UTC(2026, 0, 1);
export const NOW = NOW_MS / 1000;
const HS_KID = "hs-1";
const SECRET = new TextEncoder().encode("portcullis-test-secret-of-32-by!");
const TENANT = "tnt_00000000000000000000000000000001";

// Minimal assertions: node:assert is not available in the page.

function ok(value, message = "expected a truthy value") {
  if (!value) {
    throw new Error(message);
  }
}

/** Recursively key-sorted JSON, so equal data compares equal whatever the member order. */
export function canonical(value) {
  return JSON.stringify(value, (_, inner) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
      : inner,
  );
}

function same(actual, expected, message = "values differ") {
  const [a, e] = [canonical(actual), canonical(expected)];
  if (a !== e) {
    throw new Error(`${message}:\n  actual   ${a}\n  expected ${e}`);
  }
}

function refused(sdk, run, code, text) {
  let result;
  try {
    result = run();
  } catch (error) {
    ok(error instanceof sdk.PortcullisError, `not a PortcullisError: ${error}`);
    ok(error instanceof Error, "a PortcullisError is an Error");
    same(error.code, code, `wrong code (${error.message})`);
    if (text !== undefined) {
      ok(text.test(error.message), `message ${JSON.stringify(error.message)} !~ ${text}`);
    }
    return;
  }
  throw new Error(`expected ${code}, got ${canonical(result)}`);
}

// Token minting with WebCrypto.

const encoder = new TextEncoder();

export function b64(bytes) {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : new Uint8Array(bytes);
  let binary = "";
  for (const byte of data) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The claims the issuer puts in an access token, with `changes` (`undefined` removes). */
function claims(changes = {}) {
  const all = {
    iss: ISSUER,
    sub: "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
    aud: AUDIENCE,
    exp: NOW + 900,
    iat: NOW - 10,
    jti: "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
    tid: TENANT,
    sid: "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
    roles: ["admin"],
    perms: ["users:read", "billing:*"],
    amr: ["pwd", "otp"],
    ...changes,
  };
  return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined));
}

function input(header, payload) {
  const text = (part) => (typeof part === "string" ? part : JSON.stringify(part));
  return `${b64(text(header))}.${b64(text(payload))}`;
}

async function hmac(secret, data) {
  const key = await crypto.subtle.importKey(
    "raw",
    secret,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return b64(await crypto.subtle.sign("HMAC", key, encoder.encode(data)));
}

/** A fresh Ed25519 key pair: its private CryptoKey and public JWK named `kid`. */
async function edKey(kid) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const { kty, crv, x } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { kid, privateKey: pair.privateKey, jwk: { kty, crv, x, kid, alg: "EdDSA", use: "sig" } };
}

function header(alg, changes) {
  const all = { alg, kid: HS_KID, typ: "at+jwt", ...changes };
  return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined));
}

async function hs256(payload = claims(), changes = {}, secret = SECRET) {
  const body = input(header("HS256", changes), payload);
  return `${body}.${await hmac(secret, body)}`;
}

async function eddsa(key, payload = claims(), changes = {}) {
  const body = input(header("EdDSA", { kid: key.kid, ...changes }), payload);
  const signature = await crypto.subtle.sign("Ed25519", key.privateKey, encoder.encode(body));
  return `${body}.${b64(signature)}`;
}

function flipSignature(token) {
  const at = token.lastIndexOf(".") + 5;
  return token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1);
}

/** The suite's cases for the loaded SDK `sdk`, as `[name, run]` pairs. */
export async function suite(sdk) {
  const { RevocationList, Verifier, hasAll, hasAny, hasPermission } = sdk;
  const ed = await edKey("ed-1");
  const jwks = { keys: [ed.jwk] };
  const verifier = (options = {}) =>
    new Verifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      keys: { hs256: [{ kid: HS_KID, secret: SECRET }], jwks },
      clock: () => NOW_MS,
      ...options,
    });
  const refuses = (token, code, options) =>
    refused(sdk, () => verifier(options).verify(token), code);

  const cases = [
    [
      "a valid HS256 token yields exactly the core's claims",
      async () => {
        const token = await hs256(claims({ scope: "ignored", nbf: NOW - 10 }));
        same(verifier().verify(token), { ...claims(), nbf: NOW - 10 });
      },
    ],
    [
      "a valid EdDSA token verifies against the JWKS, parsed or as text",
      async () => {
        const token = await eddsa(ed, claims({ aud: ["web", AUDIENCE] }));
        same(verifier({ keys: { jwks } }).verify(token).aud, ["web", AUDIENCE]);
        const fromText = verifier({ keys: { jwks: JSON.stringify(jwks) } });
        same(fromText.verify(token).sub, claims().sub);
      },
    ],
    [
      "absent optional claims are absent, lists empty",
      async () => {
        const minimal = { iss: ISSUER, sub: "usr_1", aud: AUDIENCE, exp: NOW + 60 };
        same(verifier().verify(await hs256(minimal)), {
          ...minimal,
          roles: [],
          perms: [],
          amr: [],
        });
      },
    ],
    [
      "expired past the leeway, accepted within it",
      async () => {
        refuses(await hs256(claims({ exp: NOW - 30 })), "token_expired");
        ok(verifier().verify(await hs256(claims({ exp: NOW - 29 }))));
        refuses(await hs256(claims({ exp: NOW })), "token_expired", { leeway: 0 });
        refuses(await hs256(claims({ nbf: NOW + 31 })), "token_not_yet_valid");
      },
    ],
    [
      "tampered payload or signature, HS256 and EdDSA",
      async () => {
        const genuine = await hs256();
        const forged = await hs256(claims({ sub: "usr_admin" }));
        const spliced =
          forged.slice(0, forged.lastIndexOf(".")) + genuine.slice(genuine.lastIndexOf("."));
        refuses(spliced, "token_signature_invalid");
        refuses(flipSignature(genuine), "token_signature_invalid");
        refuses(flipSignature(await eddsa(ed)), "token_signature_invalid");
        refuses(await hs256(claims(), {}, new Uint8Array(32).fill(9)), "token_signature_invalid");
        refuses(await eddsa(await edKey("ed-1")), "token_signature_invalid");
      },
    ],
    [
      "alg none in any spelling",
      async () => {
        for (const alg of ["none", "None", "NONE"]) {
          refuses(`${input(header(alg), claims())}.`, "token_algorithm_unsupported");
        }
      },
    ],
    [
      "alg is never taken from the token; unknown algorithms and kids are refused",
      async () => {
        refuses(await eddsa(ed, claims(), { kid: HS_KID }), "token_algorithm_mismatch");
        // The Ed25519 public key used as the HMAC secret: the classic algorithm confusion.
        const body = input(header("HS256", { kid: "ed-1" }), claims());
        const publicKey = Uint8Array.from(
          atob(ed.jwk.x.replaceAll("-", "+").replaceAll("_", "/")),
          (c) => c.charCodeAt(0),
        );
        refuses(`${body}.${await hmac(publicKey, body)}`, "token_algorithm_mismatch");
        for (const alg of ["RS256", "hs256", "HS512"]) {
          refuses(await hs256(claims(), { alg }), "token_algorithm_unsupported");
        }
        refuses(await hs256(claims(), { kid: "hs-2" }), "token_key_unknown");
        refuses(await hs256(claims(), { kid: undefined }), "token_key_unknown");
        refuses(await hs256(claims(), { typ: "JWT" }), "token_type_invalid");
      },
    ],
    [
      "wrong issuer or audience",
      async () => {
        refuses(await hs256(claims({ iss: `${ISSUER}/` })), "token_issuer_invalid");
        refuses(await hs256(claims({ aud: ["billing", "Portcullis"] })), "token_audience_invalid");
      },
    ],
    [
      "malformed tokens and claims of the wrong type",
      async () => {
        for (const token of ["", "abc", "a.b", `${await hs256()}.x`, `${await hs256()}=`]) {
          refuses(token, "token_malformed");
        }
        refuses(await hs256(claims({ exp: String(NOW + 900) })), "token_claim_invalid");
      },
    ],
    [
      "a RevocationList revokes by jti, session and subject",
      async () => {
        const revocations = new RevocationList();
        const entry = (cursor, kind, value, extra = {}) => ({
          cursor,
          kind,
          value,
          tenant_id: TENANT,
          expires_at: NOW + 900,
          ...extra,
        });
        const applied = revocations.apply([
          entry("1", "jti", "jti-revoked"),
          entry("2", "session", "ses_revoked"),
          entry("3", "subject", "usr_revoked", { issued_before: NOW - 5 }),
        ]);
        same(applied, 3, "entries applied");
        const options = { revocations };
        refuses(await hs256(claims({ jti: "jti-revoked" })), "token_revoked", options);
        refuses(await hs256(claims({ sid: "ses_revoked" })), "token_revoked", options);
        const older = await hs256(claims({ sub: "usr_revoked", iat: NOW - 6 }));
        refuses(older, "token_revoked", options);
        ok(verifier(options).verify(await hs256(claims({ sub: "usr_revoked", iat: NOW - 5 }))));
        ok(verifier(options).verify(await hs256()), "an unrevoked token passes");
        ok(verifier().verify(await hs256(claims({ jti: "jti-revoked" }))), "list not consulted");
      },
    ],
    [
      "permission helpers apply the core's wildcard rules",
      async () => {
        ok(hasPermission(["users:*"], "users:read"));
        ok(hasPermission(["*:read"], "billing:read"));
        ok(hasPermission(["*"], "billing:refund"));
        ok(!hasPermission(["users:read"], "users:write"));
        ok(!hasPermission(["users:*"], "billing:read"));
        ok(!hasPermission(["users:read", "users:write"], "users:*"));
        ok(!hasPermission(["users:*"], "*"));
        ok(!hasPermission(["Users:*", "users:read:x", ""], "users:read"), "malformed fails closed");
        ok(hasAll(["users:*", "billing:read"], ["users:write", "billing:read"]));
        ok(!hasAll(["users:*"], ["users:write", "billing:read"]));
        ok(hasAny(["users:*"], ["billing:read", "users:write"]));
        ok(!hasAny(["users:*"], []));
        const granted = verifier().verify(await hs256());
        ok(hasPermission(granted, "billing:refund"), "claims are accepted as the grant");
        ok(!hasPermission(granted, "users:write"));
      },
    ],
    [
      "a verifier that would weaken validation cannot be built",
      async () => {
        const keys = { hs256: [{ kid: HS_KID, secret: SECRET }] };
        const base = { issuer: ISSUER, audience: AUDIENCE, keys };
        const build = (options, message) =>
          refused(sdk, () => new Verifier(options), "config_invalid", message);
        build(undefined, /^options/);
        build({ audience: AUDIENCE, keys }, /^issuer/);
        build({ issuer: ISSUER, keys }, /^audience/);
        build({ ...base, audience: "" }, /^audience/);
        build({ issuer: ISSUER, audience: AUDIENCE }, /^keys/);
        build({ ...base, keys: {} }, /^keys: no key/);
        build({ ...base, keys: { hs256: [{ kid: "k", secret: new Uint8Array(31) }] } }, /32 bytes/);
        build({ ...base, keys: { jwks: { keys: [{ ...ed.jwk, d: ed.jwk.x }] } } }, /private key/);
        build({ ...base, leeway: 61 }, /^leeway/);
        build({ ...base, clock: NOW_MS }, /^clock/);
      },
    ],
    [
      "the injected clock is read on every call, and now overrides it",
      async () => {
        let now = NOW_MS;
        const clocked = verifier({ clock: () => now });
        const token = await hs256(claims({ exp: NOW + 60 }));
        ok(clocked.verify(token));
        now = NOW_MS + 89_000;
        ok(clocked.verify(token), "within the 30 s leeway");
        now = NOW_MS + 90_000;
        refused(sdk, () => clocked.verify(token), "token_expired");
        ok(clocked.verify(token, { now: new Date(NOW_MS) }), "now as a Date");
        refused(sdk, () => verifier().verify(token, { now: NOW_MS + 3_600_000 }), "token_expired");
        refused(sdk, () => verifier().verify(token, { now: Number.NaN }), "config_invalid");
      },
    ],
  ];
  return cases;
}
