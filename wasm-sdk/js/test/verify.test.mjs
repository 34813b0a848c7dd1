import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";

import { PortcullisError, RevocationList, Verifier } from "@portcullis/sdk";

import {
  AUDIENCE,
  ED,
  HS_KID,
  ISSUER,
  JWKS,
  NOW,
  NOW_MS,
  SECRET,
  assertRefused,
  b64,
  claims,
  eddsa,
  edKey,
  flipSignature,
  hs256,
} from "./helpers.mjs";

function verifier(options = {}) {
  return new Verifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: { hs256: [{ kid: HS_KID, secret: SECRET }], jwks: JWKS },
    clock: () => NOW_MS,
    ...options,
  });
}

describe("valid tokens", () => {
  test("an HS256 token yields exactly the claims the core reads", () => {
    const token = hs256(claims({ scope: "ignored", nbf: NOW - 10 }));
    assert.deepEqual(verifier().verify(token), {
      iss: ISSUER,
      sub: "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
      aud: AUDIENCE,
      exp: NOW + 900,
      nbf: NOW - 10,
      iat: NOW - 10,
      jti: "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
      tid: "tnt_00000000000000000000000000000001",
      sid: "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
      roles: ["admin"],
      perms: ["users:read", "billing:*"],
      amr: ["pwd", "otp"],
    });
  });

  test("an EdDSA token verifies against the JWKS, given parsed or as text", () => {
    const token = eddsa(claims({ aud: ["web", AUDIENCE] }));
    const onlyJwks = { keys: { jwks: JWKS } };
    assert.deepEqual(verifier(onlyJwks).verify(token).aud, ["web", AUDIENCE]);
    const fromText = verifier({ keys: { jwks: JSON.stringify(JWKS) } });
    assert.equal(fromText.verify(token).sub, "usr_0193a1b2c3d4e5f60718293a4b5c6d7e");
  });

  test("absent optional claims are absent, lists empty", () => {
    const minimal = { iss: ISSUER, sub: "usr_1", aud: AUDIENCE, exp: NOW + 60 };
    assert.deepEqual(verifier().verify(hs256(minimal)), {
      ...minimal,
      roles: [],
      perms: [],
      amr: [],
    });
  });

  test("kids lists every trusted key, sorted", () => {
    assert.deepEqual(verifier().kids, ["ed-1", "hs-1"]);
  });
});

describe("refused tokens carry the core's code", () => {
  test("expired past the leeway, accepted within it", () => {
    assertRefused(() => verifier().verify(hs256(claims({ exp: NOW - 30 }))), "token_expired");
    assert.ok(verifier().verify(hs256(claims({ exp: NOW - 29 }))));
    const strict = verifier({ leeway: 0 });
    assertRefused(() => strict.verify(hs256(claims({ exp: NOW }))), "token_expired");
    assert.ok(verifier({ leeway: 60 }).verify(hs256(claims({ exp: NOW - 59 }))));
  });

  test("not yet valid", () => {
    const early = hs256(claims({ nbf: NOW + 31 }));
    assertRefused(() => verifier().verify(early), "token_not_yet_valid");
  });

  test("tampered payload or signature, HS256 and EdDSA", () => {
    const genuine = hs256();
    const forged = hs256(claims({ sub: "usr_admin" }));
    const body = forged.slice(0, forged.lastIndexOf("."));
    const spliced = body + genuine.slice(genuine.lastIndexOf("."));
    assertRefused(() => verifier().verify(spliced), "token_signature_invalid");
    assertRefused(() => verifier().verify(flipSignature(genuine)), "token_signature_invalid");
    assertRefused(() => verifier().verify(flipSignature(eddsa())), "token_signature_invalid");
    const otherSecret = hs256(claims(), {}, new Uint8Array(32).fill(9));
    assertRefused(() => verifier().verify(otherSecret), "token_signature_invalid");
    const otherKey = eddsa(claims(), {}, edKey("ed-1"));
    assertRefused(() => verifier().verify(otherKey), "token_signature_invalid");
  });

  test("alg is never taken from the token", () => {
    // An EdDSA header on the HS256 key, and an HS256 header on the Ed25519 key with its public
    // key used as the HMAC secret (the classic algorithm confusion).
    const edOnHs = eddsa(claims(), { kid: HS_KID });
    assertRefused(() => verifier().verify(edOnHs), "token_algorithm_mismatch");
    const header = b64(JSON.stringify({ alg: "HS256", kid: "ed-1", typ: "at+jwt" }));
    const input = `${header}.${b64(JSON.stringify(claims()))}`;
    const publicKey = Buffer.from(ED.jwk.x, "base64url");
    const mac = createHmac("sha256", publicKey).update(input).digest("base64url");
    const confused = `${input}.${mac}`;
    assertRefused(() => verifier().verify(confused), "token_algorithm_mismatch");
    for (const alg of ["RS256", "hs256", "HS512"]) {
      assertRefused(
        () => verifier().verify(hs256(claims(), { alg })),
        "token_algorithm_unsupported",
      );
    }
  });

  test("alg none in any spelling", () => {
    for (const alg of ["none", "None", "NONE"]) {
      const header = b64(JSON.stringify({ alg, kid: HS_KID, typ: "at+jwt" }));
      const unsigned = `${header}.${b64(JSON.stringify(claims()))}.`;
      assertRefused(() => verifier().verify(unsigned), "token_algorithm_unsupported");
    }
  });

  test("unknown or missing kid", () => {
    assertRefused(() => verifier().verify(hs256(claims(), { kid: "hs-2" })), "token_key_unknown");
    assertRefused(
      () => verifier().verify(hs256(claims(), { kid: undefined })),
      "token_key_unknown",
    );
  });

  test("wrong issuer or audience", () => {
    const other = hs256(claims({ iss: `${ISSUER}/` }));
    assertRefused(() => verifier().verify(other), "token_issuer_invalid");
    const billing = hs256(claims({ aud: ["billing", "Portcullis"] }));
    assertRefused(() => verifier().verify(billing), "token_audience_invalid");
  });

  test("typ: at+jwt by default, a chosen one, or any with null", () => {
    const jwt = hs256(claims(), { typ: "JWT" });
    const untyped = hs256(claims(), { typ: undefined });
    assertRefused(() => verifier().verify(jwt), "token_type_invalid");
    assertRefused(() => verifier().verify(untyped), "token_type_invalid");
    assert.ok(verifier().verify(hs256(claims(), { typ: "application/AT+JWT" })));
    const chosen = verifier({ typ: "jwt" });
    assert.ok(chosen.verify(jwt));
    assertRefused(() => chosen.verify(hs256()), "token_type_invalid");
    const anyTyp = verifier({ typ: null });
    assert.ok(anyTyp.verify(jwt) && anyTyp.verify(untyped) && anyTyp.verify(hs256()));
  });

  test("claims of the wrong type, and malformed tokens", () => {
    const stringExp = hs256(claims({ exp: String(NOW + 900) }));
    assertRefused(() => verifier().verify(stringExp), "token_claim_invalid", /exp/);
    assertRefused(() => verifier().verify(hs256(claims({ sub: "" }))), "token_claim_invalid");
    for (const token of ["", "abc", "a.b", `${hs256()}.x`, `${hs256()}=`]) {
      assertRefused(() => verifier().verify(token), "token_malformed");
    }
    assertRefused(() => verifier().verify(undefined), "token_malformed");
    assertRefused(
      () => verifier().verify(hs256(claims({ pad: "x".repeat(9000) }))),
      "token_malformed",
    );
  });

  test("a revoked token, when the verifier has a revocation list", () => {
    const revocations = new RevocationList();
    revocations.apply([
      {
        cursor: "1",
        kind: "jti",
        value: claims().jti,
        tenant_id: claims().tid,
        expires_at: NOW + 900,
      },
    ]);
    assertRefused(() => verifier({ revocations }).verify(hs256()), "token_revoked");
    assert.ok(verifier().verify(hs256()), "a verifier without the list does not consult it");
  });

  test("errors are Errors with the core's message", () => {
    try {
      verifier().verify(hs256(claims({ exp: NOW - 600 })));
      assert.fail("accepted an expired token");
    } catch (error) {
      assert.ok(error instanceof Error && error instanceof PortcullisError);
      assert.equal(error.message, "token expired");
      assert.equal(error.status, undefined);
    }
  });
});

describe("the clock", () => {
  test("verify reads the injected clock on every call", () => {
    let now = NOW_MS;
    const clocked = verifier({ clock: () => now });
    const token = hs256(claims({ exp: NOW + 60 }));
    assert.ok(clocked.verify(token));
    now = NOW_MS + 89_000;
    assert.ok(clocked.verify(token), "within the 30 s leeway");
    now = NOW_MS + 90_000;
    assertRefused(() => clocked.verify(token), "token_expired");
  });

  test("now, as a Date or milliseconds, overrides the clock", () => {
    const token = hs256(claims({ exp: NOW + 60 }));
    const late = NOW_MS + 3_600_000;
    assertRefused(() => verifier().verify(token, { now: late }), "token_expired");
    assertRefused(() => verifier().verify(token, { now: new Date(late) }), "token_expired");
    const stopped = verifier({ clock: () => late });
    assert.ok(stopped.verify(token, { now: new Date(NOW_MS) }));
  });

  test("the real clock is the default", () => {
    const realNow = Math.floor(Date.now() / 1000);
    const token = hs256(claims({ iat: realNow, exp: realNow + 60 }));
    assert.ok(verifier({ clock: undefined }).verify(token));
    assertRefused(() => verifier({ clock: undefined }).verify(hs256()), "token_expired");
  });

  test("a time that is not one is refused", () => {
    const late = [1e300, (Number.MAX_SAFE_INTEGER + 1) * 1000];
    for (const now of [Number.NaN, -1, Number.POSITIVE_INFINITY, new Date("x"), "2026", ...late]) {
      assertRefused(() => verifier().verify(hs256(), { now }), "config_invalid", /^now:/);
    }
    assertRefused(() => verifier({ clock: () => Number.NaN }).verify(hs256()), "config_invalid");
  });
});

describe("a verifier that would weaken validation cannot be built", () => {
  const keys = { hs256: [{ kid: HS_KID, secret: SECRET }] };
  const base = { issuer: ISSUER, audience: AUDIENCE, keys };
  const cases = [
    ["no options", undefined, /^options/],
    ["no issuer", { audience: AUDIENCE, keys }, /^issuer/],
    ["an empty issuer", { ...base, issuer: "" }, /^issuer/],
    ["no audience", { issuer: ISSUER, keys }, /^audience/],
    ["an empty audience", { ...base, audience: "" }, /^audience/],
    ["no keys", { issuer: ISSUER, audience: AUDIENCE }, /^keys/],
    ["an empty key source", { ...base, keys: {} }, /^keys: no key/],
    ["an empty JWKS", { ...base, keys: { jwks: { keys: [] } } }, /^keys: no key/],
    [
      "a secret under 32 bytes",
      { ...base, keys: { hs256: [{ kid: "k", secret: new Uint8Array(31) }] } },
      /^keys\.hs256\[0\]: hmac secret shorter than 32 bytes/,
    ],
    [
      "a secret given as a string",
      { ...base, keys: { hs256: [{ kid: "k", secret: "s".repeat(40) }] } },
      /^keys\.hs256\[0\]/,
    ],
    [
      "one kid twice",
      { ...base, keys: { hs256: [keys.hs256[0], keys.hs256[0]] } },
      /^keys\.hs256\[1\]: duplicate key id/,
    ],
    [
      "a JWKS with private key material",
      { ...base, keys: { jwks: { keys: [{ ...ED.jwk, d: ED.jwk.x }] } } },
      /^keys\.jwks: jwk contains private key material/,
    ],
    [
      "a JWKS with a shared secret",
      { ...base, keys: { jwks: { keys: [{ kty: "oct", kid: "k", k: b64(SECRET) }] } } },
      /^keys\.jwks: unsupported jwk/,
    ],
    ["a JWKS that is not JSON", { ...base, keys: { jwks: "{" } }, /^keys\.jwks: malformed jwks/],
    ["a leeway above 60 s", { ...base, leeway: 61 }, /^leeway/],
    ["a negative leeway", { ...base, leeway: -1 }, /^leeway/],
    ["a fractional leeway", { ...base, leeway: 1.5 }, /^leeway/],
    ["an empty typ", { ...base, typ: "" }, /^typ/],
    ["a clock that is not a function", { ...base, clock: NOW_MS }, /^clock/],
    ["revocations that are not a RevocationList", { ...base, revocations: [] }, /^revocations/],
  ];
  for (const [name, options, message] of cases) {
    test(name, () => {
      assertRefused(() => new Verifier(options), "config_invalid", message);
    });
  }
});

describe("sizes are checked before anything is copied into wasm memory", () => {
  test("a token over the core's 8 KiB gets the core's verdict without being encoded", () => {
    const encode = TextEncoder.prototype.encode;
    const encodeInto = TextEncoder.prototype.encodeInto;
    let encoded = 0;
    TextEncoder.prototype.encode = function (...args) {
      encoded += 1;
      return encode.apply(this, args);
    };
    TextEncoder.prototype.encodeInto = function (text, ...rest) {
      if (text.length > 8 * 1024) encoded += 1;
      return encodeInto.call(this, text, ...rest);
    };
    try {
      const token = hs256(claims({ padding: "x".repeat(9000) }));
      assertRefused(() => verifier().verify(token), "token_malformed", /^token too large$/);
      assertRefused(() => verifier().verify("a".repeat(50_000_000)), "token_malformed");
      assert.equal(encoded, 0);
    } finally {
      TextEncoder.prototype.encode = encode;
      TextEncoder.prototype.encodeInto = encodeInto;
    }
    // Within 8 Ki UTF-16 units but over 8 KiB of UTF-8: the core's own check, same verdict.
    assertRefused(() => verifier().verify("é".repeat(8 * 1024)), "token_malformed", /too large/);
  });

  test("an HS256 secret over 1 KiB is config_invalid", () => {
    const keys = { hs256: [{ kid: HS_KID, secret: new Uint8Array(1025).fill(7) }] };
    assertRefused(() => verifier({ keys }), "config_invalid", /^keys\.hs256\[0\]\.secret/);
    const fits = { hs256: [{ kid: HS_KID, secret: new Uint8Array(1024).fill(7) }] };
    assert.deepEqual(verifier({ keys: fits }).kids, [HS_KID]);
  });

  test("a JWKS document over 64 Ki characters is config_invalid", () => {
    const jwks = { keys: [ED.jwk], padding: "x".repeat(64 * 1024) };
    assertRefused(() => verifier({ keys: { jwks } }), "config_invalid", /^keys\.jwks/);
    assertRefused(
      () => verifier({ keys: { jwks: JSON.stringify(jwks) } }),
      "config_invalid",
      /^keys\.jwks/,
    );
  });

  test("JWKS keys not for verifying are skipped, given parsed or as text", () => {
    const enc = edKey("ed-enc");
    const jwks = { keys: [ED.jwk, { ...enc.jwk, use: "enc" }] };
    for (const given of [jwks, JSON.stringify(jwks)]) {
      const only = verifier({ keys: { jwks: given } });
      assert.deepEqual(only.kids, ["ed-1"]);
      assert.ok(only.verify(eddsa()));
    }
  });
});
