// What both bundled apps do with a token, written once: build a verifier from plain JSON keys
// (an HS256 secret and a JWKS document) and answer with the verdict as plain JSON. It imports
// nothing but `@portcullis/sdk`, which the bundler resolves for its target: the `workerd`
// entry for worker.mjs, the browser (default) entry for app.mjs.
import { PortcullisError, Verifier, hasPermission } from "@portcullis/sdk";

export const ISSUER = "https://auth.portcullis.test";
export const AUDIENCE = "portcullis";

function base64url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** A verifier for `keys` ({ hsKid, hsSecret (base64url), jwks (document or JSON text) }). */
export function verifierFor(keys) {
  return new Verifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: {
      hs256: [{ kid: keys.hsKid, secret: base64url(keys.hsSecret) }],
      jwks: keys.jwks,
    },
  });
}

/** `{ ok: true, sub, usersRead, usersWrite }`, or `{ ok: false, code }` when refused. */
export function answer(verifier, token) {
  try {
    const claims = verifier.verify(token);
    return {
      ok: true,
      sub: claims.sub,
      usersRead: hasPermission(claims, "users:read"),
      usersWrite: hasPermission(claims, "users:write"),
    };
  } catch (error) {
    if (error instanceof PortcullisError) {
      return { ok: false, code: error.code };
    }
    throw error;
  }
}
