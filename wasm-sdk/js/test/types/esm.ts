// Compiled (not run) against the installed package: the declarations a TypeScript user gets
// through `import`, with every `@ts-expect-error` a misuse the types must refuse.
import {
  JwksCache,
  JwksVerifier,
  PortcullisError,
  RevocationFeed,
  RevocationList,
  Verifier,
  hasAll,
  hasPermission,
  init,
  initSync,
} from "@portcullis/sdk";
import type { Claims, PortcullisErrorCode, RevocationEntry, TokenErrorCode } from "@portcullis/sdk";

/** `true` only for `any`, which no exported type may be. */
type IsAny<T> = 0 extends 1 & T ? true : false;

const secret = new Uint8Array(32);
const verifier = new Verifier({
  issuer: "https://auth.example",
  audience: "api",
  keys: { hs256: [{ kid: "k1", secret }], jwks: { keys: [] } },
  leeway: 10,
  typ: null,
  clock: Date.now,
});
const claims = verifier.verify("token", { now: new Date() });
const claimsNotAny: IsAny<typeof claims> = false;
const claimsAreClaims: Claims = claims;
const sub: string = claims.sub;
const exp: number = claims.exp;
const sid: string | undefined = claims.sid;
const aud: string | readonly string[] = claims.aud;
// @ts-expect-error claims are read-only
claims.sub = "usr_2";
// @ts-expect-error lists are read-only
claims.perms.push("*");
// @ts-expect-error an issuer is required
new Verifier({ audience: "api", keys: { hs256: [{ kid: "k1", secret }] } });
// @ts-expect-error keys are required
new Verifier({ issuer: "https://auth.example", audience: "api" });
// @ts-expect-error a secret is bytes, not a string
new Verifier({ issuer: "i", audience: "a", keys: { hs256: [{ kid: "k1", secret: "s" }] } });
// @ts-expect-error there is no algorithm option: keys own their algorithm
new Verifier({ issuer: "i", audience: "a", keys: {}, algorithms: ["HS256"] });

// The Node entry's init() and initSync() take what the web entry's take, and do nothing.
await init();
await init(new URL("https://cdn.example/portcullis.wasm"));
initSync(new Uint8Array(8));
// @ts-expect-error initSync needs a source, as in the web entry
initSync();

const cache = new JwksCache({ url: "https://auth.example/.well-known/jwks.json", fetch });
const remote = new JwksVerifier({ issuer: "i", audience: "a", jwks: cache });
new JwksCache({ url: "https://auth.example/.well-known/jwks.json", maxStale: 3600 });
// @ts-expect-error fetch belongs to the JwksCache, not the JwksVerifier
new JwksVerifier({ issuer: "i", audience: "a", jwks: cache, fetch });
const later = remote.verify("token");
const laterNotAny: IsAny<Awaited<typeof later>> = false;

const entry: RevocationEntry = {
  cursor: "1",
  kind: "session",
  value: "ses_1",
  tenant_id: "tnt_1",
  expires_at: 1,
};
// @ts-expect-error an unknown kind
const wrongKind: RevocationEntry = { ...entry, kind: "user" };
const list = new RevocationList();
const applied = list.apply([entry]);
const cursor = list.cursor;
const listNotAny: [IsAny<typeof applied>, IsAny<typeof cursor>] = [false, false];
const feed = new RevocationFeed({ url: new URL("https://auth.example/v1/revocations"), list });
feed.start({ interval: 5, onError: (error: unknown) => console.error(error) });
// @ts-expect-error onError is required
feed.start({ interval: 5 });
const polled = feed.poll();
const polledNotAny: IsAny<Awaited<typeof polled>> = false;

const allowed = hasPermission(claims, "users:read") && hasAll(claims.perms, ["a:b"]);
const allowedNotAny: IsAny<typeof allowed> = false;

try {
  verifier.verify("token");
} catch (error) {
  if (error instanceof PortcullisError) {
    const code: PortcullisErrorCode = error.code;
    const codeNotAny: IsAny<typeof code> = false;
    const status: number | undefined = error.status;
    // @ts-expect-error codes are a closed set
    const unknown: PortcullisErrorCode = "token_bogus";
    const tokenCode: TokenErrorCode = "token_revoked";
    const loadCode: PortcullisErrorCode = "wasm_load_failed";
    void loadCode;
    void [code, codeNotAny, status, unknown, tokenCode];
  }
}

void [claimsNotAny, claimsAreClaims, sub, exp, sid, aud, later, laterNotAny, wrongKind];
void [listNotAny, polledNotAny, allowedNotAny];
