// The differential corpus run through the SDK, in a portable form: node.test.mjs runs it in
// Node and ../browser/chromium.test.mjs in headless Chromium. The corpus comes from the native
// core at test time (`cargo run -p portcullis-wasm-sdk --example corpus`, see
// scripts/test-browser.mjs): each case holds a token and the verdict, error code and claims
// `portcullis-core` gave it. Every case must get exactly the same from the SDK.

/** Recursively key-sorted JSON, so equal data compares equal whatever the member order. */
function canonical(value) {
  return JSON.stringify(value, (_, inner) =>
    inner && typeof inner === "object" && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
      : inner,
  );
}

function unbase64url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** What the SDK says of `token`: `{ verdict: "ok", claims }` or `{ verdict: code }`. */
function verdictOf(sdk, verifier, token) {
  try {
    return { verdict: "ok", claims: verifier.verify(token) };
  } catch (error) {
    if (!(error instanceof sdk.PortcullisError)) {
      throw new Error(`threw something other than a PortcullisError: ${error}`);
    }
    return { verdict: error.code, claims: null };
  }
}

/**
 * The corpus's cases for the loaded SDK `sdk`, as `[name, run]` pairs (`run` throws on a
 * disagreement with the native core), preceded by one that checks the corpus itself.
 */
export function differential(sdk, corpus) {
  const revocations = new sdk.RevocationList();
  revocations.apply(corpus.revocations);
  const verifier = new sdk.Verifier({
    issuer: corpus.issuer,
    audience: corpus.audience,
    leeway: corpus.leeway,
    keys: {
      hs256: corpus.hs256.map(({ kid, secret }) => ({ kid, secret: unbase64url(secret) })),
      jwks: corpus.jwks,
    },
    revocations,
    clock: () => corpus.now * 1000,
  });
  const verdicts = new Set(corpus.cases.map((entry) => entry.verdict));
  const sound = () => {
    if (corpus.cases.length < 40 || !verdicts.has("ok") || verdicts.size < 13) {
      throw new Error(`corpus too thin: ${corpus.cases.length} cases, ${[...verdicts]}`);
    }
  };
  return [
    ["the corpus has valid tokens and every error code", sound],
    ...corpus.cases.map((entry) => [
      `${entry.name}: ${entry.verdict}`,
      () => {
        const sdkSays = verdictOf(sdk, verifier, entry.token);
        const native = { verdict: entry.verdict, claims: entry.claims };
        const [actual, expected] = [canonical(sdkSays), canonical(native)];
        if (actual !== expected) {
          throw new Error(
            `the SDK disagrees with native core:\n  sdk  ${actual}\n  core ${expected}`,
          );
        }
      },
    ]),
  ];
}
