// A Cloudflare Worker that verifies the bearer token of each request with `@portcullis/sdk`,
// bundled by workerd.test.mjs as wrangler would (the `workerd` condition, the `.wasm` import
// kept as a separate compiled module) and run in workerd through Miniflare. The keys come from
// its bindings: HS_KID, HS_SECRET (base64url) and JWKS (JSON text).
import { answer, verifierFor } from "./verify-app.mjs";

let verifier;

export default {
  async fetch(request, env) {
    verifier ??= verifierFor({ hsKid: env.HS_KID, hsSecret: env.HS_SECRET, jwks: env.JWKS });
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const verdict = answer(verifier, token);
    return Response.json(
      { ...verdict, runtime: navigator.userAgent },
      { status: verdict.ok ? 200 : 401 },
    );
  },
};
