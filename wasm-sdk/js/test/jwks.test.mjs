import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { JwksCache, JwksVerifier, RevocationList } from "@portcullis/sdk";

import {
  AUDIENCE,
  ED,
  HS_KID,
  ISSUER,
  NOW_MS,
  SECRET,
  assertRefused,
  assertRejected,
  claims,
  eddsa,
  edKey,
  hs256,
} from "./helpers.mjs";
import { startIssuer } from "./server.mjs";

const URL_ = "https://auth.portcullis.test/.well-known/jwks.json";

/** A fake issuer JWKS endpoint: serves `served.document`, counts fetches, has a clock. */
function fakeIssuer(document) {
  const served = { document, status: 200, fetches: 0, urls: [], now: NOW_MS };
  const fetch = async (url, init) => {
    served.fetches += 1;
    served.urls.push(url);
    assert.equal(init.headers.accept, "application/json");
    assert.ok(init.signal instanceof AbortSignal);
    const body = JSON.stringify(served.document);
    return new Response(body, { status: served.status });
  };
  const clock = () => served.now;
  return { served, fetch, clock };
}

function setup(options = {}) {
  const issuer = fakeIssuer({ keys: [ED.jwk] });
  const cache = new JwksCache({ url: URL_, fetch: issuer.fetch, clock: issuer.clock, ...options });
  const verifier = new JwksVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwks: cache,
    clock: issuer.clock,
  });
  return { ...issuer, cache, verifier };
}

describe("JwksCache and JwksVerifier", () => {
  test("fetches once, then verifies from the cache", async () => {
    const { served, verifier } = setup();
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await verifier.verify(eddsa())).sub, claims().sub);
    }
    assert.equal(served.fetches, 1);
    assert.deepEqual(served.urls, [URL_]);
    await assertRejected(
      verifier.verify(eddsa(claims({ aud: "other" }))),
      "token_audience_invalid",
    );
    assert.equal(served.fetches, 1, "only an unknown kid asks for a refresh");
  });

  test("an unknown kid refreshes the keys: a rotated key verifies", async () => {
    const { served, verifier } = setup();
    await verifier.verify(eddsa());
    const next = edKey("ed-2");
    served.document = { keys: [ED.jwk, next.jwk] };
    served.now += 30_000;
    assert.ok(await verifier.verify(eddsa(claims(), {}, next)));
    assert.equal(served.fetches, 2);
    assert.ok(await verifier.verify(eddsa(claims(), {}, next)));
    assert.equal(served.fetches, 2);
  });

  test("refreshes are at least minRefreshInterval apart", async () => {
    const { served, cache, verifier } = setup({ minRefreshInterval: 30 });
    await verifier.verify(eddsa());
    const unknown = eddsa(claims(), {}, edKey("ed-9"));
    await assertRejected(verifier.verify(unknown), "token_key_unknown");
    assert.equal(served.fetches, 1, "the first fetch was just now");
    served.now += 30_000;
    await assertRejected(verifier.verify(unknown), "token_key_unknown");
    assert.equal(served.fetches, 2);
    served.now += 29_999;
    await assertRejected(verifier.verify(unknown), "token_key_unknown");
    assert.equal(await cache.refresh(), false);
    assert.equal(served.fetches, 2);
    served.now += 1;
    assert.equal(await cache.refresh(), true);
    assert.equal(served.fetches, 3);
  });

  test("a document older than maxAge is fetched again before use", async () => {
    const { served, cache } = setup({ maxAge: 300 });
    const first = await cache.get();
    served.now += 299_999;
    assert.equal(await cache.get(), first);
    assert.equal(served.fetches, 1);
    served.now += 1;
    served.document = { keys: [ED.jwk, edKey("ed-2").jwk] };
    assert.equal((await cache.get()).keys.length, 2);
    assert.equal(served.fetches, 2);
  });

  test("a bad document never replaces a good one", async () => {
    const { served, cache, verifier } = setup();
    await verifier.verify(eddsa());
    served.now += 60_000;
    for (const bad of [
      { keys: [{ ...ED.jwk, d: ED.jwk.x }] },
      { keys: [{ kty: "oct", kid: "k", k: "c2VjcmV0" }] },
      { keys: {} },
      [],
    ]) {
      served.document = bad;
      served.now += 30_000;
      await assertRejected(cache.refresh(), "response_invalid", /jwks/);
    }
    assert.equal((await cache.get()).keys[0].kid, "ed-1");
    assert.ok(await verifier.verify(eddsa()));
  });

  test("HTTP errors are fetch_failed with the status", async () => {
    const { served, verifier } = setup();
    served.status = 404;
    await assert.rejects(verifier.verify(eddsa()), (error) => {
      assert.equal(error.code, "fetch_failed");
      assert.equal(error.status, 404);
      return true;
    });
  });

  test("concurrent first uses share one fetch", async () => {
    const { served, verifier } = setup();
    await Promise.all([
      verifier.verify(eddsa()),
      verifier.verify(eddsa()),
      verifier.verify(eddsa()),
    ]);
    assert.equal(served.fetches, 1);
  });

  test("a JWKS without keys refuses every token as token_key_unknown", async () => {
    const { served, verifier } = setup();
    served.document = { keys: [] };
    await assertRejected(verifier.verify(eddsa()), "token_key_unknown");
  });

  test("HS256 secrets, revocations and typ apply as in Verifier", async () => {
    const { fetch, clock } = fakeIssuer({ keys: [ED.jwk] });
    const revocations = new RevocationList();
    revocations.apply([
      { cursor: "1", kind: "jti", value: "gone", tenant_id: "t", expires_at: NOW_MS / 1000 + 60 },
    ]);
    const verifier = new JwksVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: new JwksCache({ url: URL_, fetch, clock }),
      hs256: [{ kid: HS_KID, secret: SECRET }],
      revocations,
      typ: null,
      clock,
    });
    assert.ok(await verifier.verify(hs256(claims(), { typ: undefined })));
    assert.ok(await verifier.verify(eddsa()));
    await assertRejected(verifier.verify(eddsa(claims({ jti: "gone" }))), "token_revoked");
    await assertRejected(verifier.verify(hs256(), { now: NOW_MS + 3_600_000 }), "token_expired");
  });

  test("options are checked", () => {
    const { cache } = setup();
    const policy = { issuer: ISSUER, audience: AUDIENCE };
    assertRefused(() => new JwksVerifier({ ...policy }), "config_invalid", /^jwks/);
    assertRefused(
      () => new JwksVerifier({ audience: AUDIENCE, jwks: cache }),
      "config_invalid",
      /^issuer/,
    );
    assertRefused(
      () => new JwksVerifier({ ...policy, jwks: cache, leeway: 90 }),
      "config_invalid",
      /^leeway/,
    );
    const short = [{ kid: "k", secret: new Uint8Array(8) }];
    assertRefused(
      () => new JwksVerifier({ ...policy, jwks: cache, hs256: short }),
      "config_invalid",
      /^keys\.hs256\[0\]/,
    );
    assertRefused(() => new JwksCache({ url: "jwks.json" }), "config_invalid", /^url/);
    assertRefused(() => new JwksCache({ url: URL_, maxAge: -1 }), "config_invalid", /^maxAge/);
    assertRefused(
      () => new JwksCache({ url: URL_, minRefreshInterval: "30" }),
      "config_invalid",
      /^minRefreshInterval/,
    );
  });
});

describe("JwksCache over HTTP with the global fetch", () => {
  let issuer;
  before(async () => {
    issuer = await startIssuer();
  });
  after(() => issuer.close());

  test("fetches the JWKS URL and refreshes for a new kid", async () => {
    issuer.feed.jwks = { keys: [ED.jwk] };
    let now = NOW_MS;
    const clock = () => now;
    const cache = new JwksCache({ url: issuer.jwksUrl, clock });
    const verifier = new JwksVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: cache, clock });
    assert.ok(await verifier.verify(eddsa()));
    const next = edKey("ed-2");
    issuer.feed.jwks = { keys: [next.jwk] };
    now += 31_000;
    assert.ok(await verifier.verify(eddsa(claims(), {}, next)));
    await assertRejected(verifier.verify(eddsa()), "token_key_unknown");
    assert.deepEqual(issuer.feed.requests, ["/.well-known/jwks.json", "/.well-known/jwks.json"]);
  });
});
