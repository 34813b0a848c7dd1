// The tokens the bundled apps (worker.mjs in workerd, app.mjs in Chromium) are asked to verify,
// and the answers expected of them. The tokens are minted in Node with its own crypto
// (../helpers.mjs) at the real time, so the apps verify them with the SDK's default clock,
// `Date.now` in the runtime under test.
import { ED, HS_KID, SECRET, b64, claims, eddsa, flipSignature, hs256 } from "../helpers.mjs";

/** The keys the apps trust, as plain JSON: the HS256 secret base64url-encoded, the JWKS. */
export const KEYS = { hsKid: HS_KID, hsSecret: b64(SECRET), jwks: { keys: [ED.jwk] } };

/** `[name, token, expected answer]` triples, with tokens valid for 15 minutes from now. */
export function cases() {
  const now = Math.floor(Date.now() / 1000);
  const live = { iat: now - 10, exp: now + 900 };
  const granted = { ok: true, sub: claims().sub, usersRead: true, usersWrite: false };
  return [
    ["a valid HS256 token", hs256(claims(live)), granted],
    ["a valid EdDSA token (JWKS)", eddsa(claims(live)), granted],
    [
      "an expired HS256 token",
      hs256(claims({ iat: now - 7200, exp: now - 3600 })),
      { ok: false, code: "token_expired" },
    ],
    [
      "a tampered EdDSA token",
      flipSignature(eddsa(claims(live))),
      { ok: false, code: "token_signature_invalid" },
    ],
    [
      "an HS256 token for another audience",
      hs256(claims({ ...live, aud: "someone-else" })),
      { ok: false, code: "token_audience_invalid" },
    ],
  ];
}
