// Interop with `jose`, a JWT library nobody here wrote: tokens jose signs verify in the SDK,
// access tokens of the real issuer verify in jose and in the SDK, and a token whose payload
// was changed after signing is refused by both.
//
// The issuer part starts the `issuer` binary named by PORTCULLIS_ISSUER_BIN (scripts/test-sdk
// builds it and sets it) in embedded mode, with a temporary data directory and a free port.
// Without the binary that part is skipped, except with PORTCULLIS_REQUIRE_SERVICES=1 (CI),
// where it fails.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

import * as jose from "jose";
import { JwksCache, JwksVerifier, PortcullisError, Verifier } from "@portcullis/sdk";

import { AUDIENCE, ISSUER, NOW, NOW_MS } from "./helpers.mjs";

const AUD = "portcullis"; // the issuer's default `token.audience`
const PASSWORD = "correct horse battery staple";

/** The claims jose signs, the issuer's claim set. */
const CLAIMS = {
  jti: "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
  tid: "tnt_00000000000000000000000000000001",
  sid: "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
  roles: ["admin"],
  perms: ["users:read", "billing:*"],
  amr: ["pwd", "otp"],
};
const SUB = "usr_0193a1b2c3d4e5f60718293a4b5c6d7e";

/** A token signed by jose with the claims above, valid at {@link NOW}. */
function joseSign(key, header) {
  return new jose.SignJWT(CLAIMS)
    .setProtectedHeader({ typ: "at+jwt", ...header })
    .setIssuer(ISSUER)
    .setSubject(SUB)
    .setAudience(AUDIENCE)
    .setIssuedAt(NOW - 10)
    .setNotBefore(NOW - 10)
    .setExpirationTime(NOW + 900)
    .sign(key);
}

/**
 * `token` with one byte of its decoded payload changed, the signature kept: the first
 * character of the `sub` value, so the payload stays valid JSON and only the claims differ.
 */
function tamperPayload(token) {
  const [header, payload, signature] = token.split(".");
  const bytes = Buffer.from(payload, "base64url");
  const at = bytes.indexOf('"sub":"') + '"sub":"'.length;
  assert.ok(at >= '"sub":"'.length, "the payload has a sub claim");
  bytes[at] ^= 0x01; // `u` becomes `t`
  const tampered = `${header}.${bytes.toString("base64url")}.${signature}`;
  assert.notEqual(tampered, token);
  assert.doesNotThrow(() => JSON.parse(bytes.toString()), "still JSON");
  return tampered;
}

async function assertJoseRefuses(verification) {
  await assert.rejects(verification, (error) => {
    assert.ok(error instanceof jose.errors.JWSSignatureVerificationFailed, `${error}`);
    return true;
  });
}

function assertSdkRefuses(run, code = "token_signature_invalid") {
  assert.throws(run, (error) => {
    assert.ok(error instanceof PortcullisError, `not a PortcullisError: ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** The claims the SDK returns for a token jose signed with {@link CLAIMS}. */
const EXPECTED = {
  iss: ISSUER,
  sub: SUB,
  aud: AUDIENCE,
  exp: NOW + 900,
  nbf: NOW - 10,
  iat: NOW - 10,
  ...CLAIMS,
};

describe("tokens signed by jose verify in the SDK", () => {
  const policy = { issuer: ISSUER, audience: AUDIENCE, clock: () => NOW_MS };

  test("HS256 with a shared secret", async () => {
    const secret = randomBytes(32);
    const token = await joseSign(secret, { alg: "HS256", kid: "jose-hs" });
    const verifier = new Verifier({ ...policy, keys: { hs256: [{ kid: "jose-hs", secret }] } });
    assert.deepEqual({ ...verifier.verify(token) }, EXPECTED);

    const tampered = tamperPayload(token);
    assertSdkRefuses(() => verifier.verify(tampered));
    await assertJoseRefuses(
      jose.jwtVerify(tampered, secret, { algorithms: ["HS256"], currentDate: new Date(NOW_MS) }),
    );
  });

  test("EdDSA with an Ed25519 key published as a JWKS", async () => {
    const { publicKey, privateKey } = await jose.generateKeyPair("EdDSA", { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: "jose-ed", alg: "EdDSA", use: "sig" };
    assert.equal(jwk.crv, "Ed25519");
    const jwks = { keys: [jwk] };
    const token = await joseSign(privateKey, { alg: "EdDSA", kid: "jose-ed" });
    const verifier = new Verifier({ ...policy, keys: { jwks } });
    assert.deepEqual({ ...verifier.verify(token) }, EXPECTED);
    // The JWKS as text, the way it arrives over HTTP.
    const fromText = new Verifier({ ...policy, keys: { jwks: JSON.stringify(jwks) } });
    assert.equal(fromText.verify(token).sub, SUB);

    const tampered = tamperPayload(token);
    assertSdkRefuses(() => verifier.verify(tampered));
    await assertJoseRefuses(
      jose.jwtVerify(tampered, jose.createLocalJWKSet(jwks), { currentDate: new Date(NOW_MS) }),
    );
  });

  test("a jose token under a kid of the other algorithm is refused", async () => {
    const secret = randomBytes(32);
    const { publicKey } = await jose.generateKeyPair("EdDSA", { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: "shared", alg: "EdDSA" };
    const token = await joseSign(secret, { alg: "HS256", kid: "shared" });
    const verifier = new Verifier({ ...policy, keys: { jwks: { keys: [jwk] } } });
    assertSdkRefuses(() => verifier.verify(token), "token_algorithm_mismatch");
  });
});

/** The path of the issuer binary, or why there is none. */
function issuerBinary() {
  const path = process.env.PORTCULLIS_ISSUER_BIN;
  if (!path) {
    return { missing: "PORTCULLIS_ISSUER_BIN is not set (scripts/test-sdk sets it)" };
  }
  try {
    accessSync(path, constants.X_OK);
  } catch (error) {
    return { missing: `PORTCULLIS_ISSUER_BIN=${path} is not an executable: ${error.code}` };
  }
  return { path };
}

/**
 * Starts the issuer in embedded mode on a free port with `config` (TOML text) in a fresh
 * temporary directory; resolves to `{ base, stop }` once it printed its start line.
 */
async function startIssuer(path, config) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-interop-"));
  writeFileSync(join(dir, "config.toml"), config);
  // Only our settings: an inherited database or Redis URL would leave embedded mode.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("PORTCULLIS_")),
  );
  const child = spawn(path, [], {
    env: {
      ...env,
      PORTCULLIS_DATA_DIR: join(dir, "data"),
      PORTCULLIS_LISTEN: "127.0.0.1:0",
      PORTCULLIS_CONFIG: join(dir, "config.toml"),
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  // However this process ends, the issuer does not outlive it.
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const stop = async () => {
    process.removeListener("exit", kill);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no start line within 30 s")), 30_000);
      const lines = createInterface({ input: child.stdout });
      lines.on("line", (line) => {
        const match = /^Portcullis issuer listening on (http:\/\/\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once("error", reject);
      exited.then((code) => reject(new Error(`issuer exited with ${code}`)));
    });
    return { base, stop };
  } catch (error) {
    await stop();
    throw new Error(`${error.message}; issuer stderr:\n${stderr}`);
  }
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `POST ${url}: ${response.status} ${text}`);
  return JSON.parse(text);
}

async function getJson(url) {
  const response = await fetch(url);
  assert.ok(response.ok, `GET ${url}: ${response.status}`);
  return response.json();
}

/** Registers a user and logs in; resolves to the user id and the access token. */
async function login(base) {
  const email = `interop-${randomBytes(4).toString("hex")}@example.com`;
  const { user_id } = await postJson(`${base}/v1/auth/register`, { email, password: PASSWORD });
  const { access_token } = await postJson(`${base}/v1/auth/login`, { email, password: PASSWORD });
  return { userId: user_id, token: access_token };
}

/** Asserts that the SDK's claims and jose's payload of one issuer token agree. */
function assertSameClaims(claims, payload, { issuer, userId }) {
  assert.equal(claims.iss, issuer);
  assert.equal(claims.sub, userId);
  for (const name of ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "tid", "sid"]) {
    assert.deepEqual(claims[name], payload[name], name);
  }
  for (const name of ["roles", "perms", "amr"]) {
    assert.deepEqual(claims[name], payload[name] ?? [], name);
  }
}

const binary = issuerBinary();
const required = process.env.PORTCULLIS_REQUIRE_SERVICES === "1";
const skip = binary.missing !== undefined && !required ? `skipped: ${binary.missing}` : false;

describe("access tokens of the real issuer verify in jose and in the SDK", { skip }, () => {
  test("the issuer binary is there", () => {
    assert.equal(binary.missing, undefined, `${binary.missing} (PORTCULLIS_REQUIRE_SERVICES=1)`);
  });

  describe("HS256, with a configured secret", { skip: binary.missing !== undefined }, () => {
    const kid = "interop-hs";
    const secret = randomBytes(32);
    const config = [
      "[[token.keys]]",
      `kid = "${kid}"`,
      'alg = "HS256"',
      `secret = "${secret.toString("base64url")}"`,
      "active = true",
      "",
    ].join("\n");
    let issuer;
    before(async () => {
      issuer = await startIssuer(binary.path, config);
    });
    after(() => issuer?.stop());

    test("jose and the SDK accept a login token, with the same claims, and refuse it tampered", async () => {
      const { issuer: iss } = await getJson(`${issuer.base}/.well-known/openid-configuration`);
      const { userId, token } = await login(issuer.base);
      assert.equal(jose.decodeProtectedHeader(token).kid, kid);

      const options = { issuer: iss, audience: AUD, algorithms: ["HS256"], typ: "at+jwt" };
      const { payload } = await jose.jwtVerify(token, secret, options);
      const verifier = new Verifier({
        issuer: iss,
        audience: AUD,
        keys: { hs256: [{ kid, secret }] },
      });
      assertSameClaims(verifier.verify(token), payload, { issuer: iss, userId });

      const tampered = tamperPayload(token);
      await assertJoseRefuses(jose.jwtVerify(tampered, secret, options));
      assertSdkRefuses(() => verifier.verify(tampered));
    });
  });

  describe(
    "EdDSA, keys published at /.well-known/jwks.json",
    { skip: binary.missing !== undefined },
    () => {
      let issuer;
      before(async () => {
        issuer = await startIssuer(binary.path, '[token]\nalgorithm = "EdDSA"\n');
      });
      after(() => issuer?.stop());

      test("jose (local JWKS) and the SDK accept a login token, and refuse it tampered", async () => {
        const discovery = await getJson(`${issuer.base}/.well-known/openid-configuration`);
        const iss = discovery.issuer;
        const jwks = await getJson(discovery.jwks_uri);
        const { userId, token } = await login(issuer.base);
        assert.equal(jose.decodeProtectedHeader(token).alg, "EdDSA");

        const keys = jose.createLocalJWKSet(jwks);
        const options = { issuer: iss, audience: AUD, algorithms: ["EdDSA"], typ: "at+jwt" };
        const { payload } = await jose.jwtVerify(token, keys, options);
        const verifier = new Verifier({ issuer: iss, audience: AUD, keys: { jwks } });
        assertSameClaims(verifier.verify(token), payload, { issuer: iss, userId });
        // And through the SDK's own JWKS fetching, from the issuer's URL.
        const cached = new JwksVerifier({
          issuer: iss,
          audience: AUD,
          jwks: new JwksCache({ url: discovery.jwks_uri }),
        });
        assert.equal((await cached.verify(token)).sub, userId);

        const tampered = tamperPayload(token);
        await assertJoseRefuses(jose.jwtVerify(tampered, keys, options));
        assertSdkRefuses(() => verifier.verify(tampered));
        await assert.rejects(cached.verify(tampered), (error) => {
          assert.equal(error.code, "token_signature_invalid", error.message);
          return true;
        });
      });
    },
  );
});
