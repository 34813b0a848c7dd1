// Test tokens minted with Node's own crypto, never with the SDK under test. This module loads
// no entry of the SDK, so the tests of the web entry alone can use it too.
import { createHmac, generateKeyPairSync, sign } from "node:crypto";

export const ISSUER = "https://auth.portcullis.test";
export const AUDIENCE = "portcullis";
/** The fixed time of the tests, 2026-01-01T00:00:00Z, in milliseconds. */
export const NOW_MS = Date.UTC(2026, 0, 1);
export const NOW = NOW_MS / 1000;
export const HS_KID = "hs-1";
export const SECRET = new TextEncoder().encode("portcullis-test-secret-of-32-by!");

export const b64 = (bytes) => Buffer.from(bytes).toString("base64url");

/** A fresh Ed25519 key pair: the private key and its public JWK named `kid`. */
export function edKey(kid) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const { kty, crv, x } = publicKey.export({ format: "jwk" });
  return { kid, privateKey, jwk: { kty, crv, x, kid, alg: "EdDSA", use: "sig" } };
}

export const ED = edKey("ed-1");
export const JWKS = { keys: [ED.jwk] };

/** The claims the issuer puts in an access token, with `changes` (`undefined` removes). */
export function claims(changes = {}) {
  const all = {
    iss: ISSUER,
    sub: "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
    aud: AUDIENCE,
    exp: NOW + 900,
    iat: NOW - 10,
    jti: "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
    tid: "tnt_00000000000000000000000000000001",
    sid: "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
    roles: ["admin"],
    perms: ["users:read", "billing:*"],
    amr: ["pwd", "otp"],
    ...changes,
  };
  return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined));
}

function signingInput(header, payload) {
  const text = (part) => (typeof part === "string" ? part : JSON.stringify(part));
  return `${b64(text(header))}.${b64(text(payload))}`;
}

/** An HS256 token (header and payload as objects or raw JSON text). */
export function hs256(payload = claims(), header = {}, secret = SECRET) {
  const input = signingInput({ alg: "HS256", kid: HS_KID, typ: "at+jwt", ...header }, payload);
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** An EdDSA token signed with `key` (default {@link ED}). */
export function eddsa(payload = claims(), header = {}, key = ED) {
  const input = signingInput({ alg: "EdDSA", kid: key.kid, typ: "at+jwt", ...header }, payload);
  return `${input}.${b64(sign(null, Buffer.from(input), key.privateKey))}`;
}

/** `token` with one character of its signature changed. */
export function flipSignature(token) {
  const at = token.lastIndexOf(".") + 5;
  const replacement = token[at] === "A" ? "B" : "A";
  return token.slice(0, at) + replacement + token.slice(at + 1);
}
