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
    const body =
      typeof served.document === "string" ? served.document : JSON.stringify(served.document);
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

describe("JwksCache while the JWKS endpoint fails", () => {
  const failures = {
    "a 500": (served) => {
      served.status = 500;
    },
    garbage: (served) => {
      served.document = "<html>";
    },
    "a rejected fetch": (served) => {
      served.reject = true;
    },
  };

  /** {@link setup} over a fetch that can also reject, for outages. */
  function outage(options = {}) {
    const issuer = fakeIssuer({ keys: [ED.jwk] });
    const fetch = async (url, init) => {
      if (issuer.served.reject) {
        issuer.served.fetches += 1;
        throw new TypeError("fetch failed");
      }
      return issuer.fetch(url, init);
    };
    const cache = new JwksCache({ url: URL_, fetch, clock: issuer.clock, ...options });
    const verifier = new JwksVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwks: cache,
      clock: issuer.clock,
    });
    return { ...issuer, cache, verifier };
  }

  for (const [name, fail] of Object.entries(failures)) {
    test(`${name} past maxAge: known kids keep verifying, fetches stay throttled`, async () => {
      const { served, cache, verifier } = outage({ maxAge: 300, minRefreshInterval: 30 });
      assert.ok(await verifier.verify(eddsa()));
      fail(served);
      served.now += 300_000;
      for (let i = 0; i < 5; i += 1) {
        assert.ok(await verifier.verify(eddsa()), "the last good document is served");
      }
      assert.equal(served.fetches, 2, "one failed fetch, not one per verify");
      served.now += 29_999;
      assert.ok(await verifier.verify(eddsa()));
      assert.equal(served.fetches, 2);
      served.now += 1;
      assert.ok(await verifier.verify(eddsa()));
      assert.equal(served.fetches, 3, "retried once minRefreshInterval has passed");
      Object.assign(served, { status: 200, document: { keys: [] }, reject: false });
      served.now += 30_000;
      assert.deepEqual((await cache.get()).keys, [], "a recovered endpoint is used again");
      await assertRejected(verifier.verify(eddsa()), "token_key_unknown");
    });
  }

  test("the stale document is served for maxStale past maxAge, then the error", async () => {
    const { served, verifier } = outage({ maxAge: 300, maxStale: 600 });
    await verifier.verify(eddsa());
    served.status = 503;
    served.now += 899_999;
    assert.ok(await verifier.verify(eddsa()));
    served.now += 1;
    await assert.rejects(verifier.verify(eddsa()), (error) => {
      assert.equal(error.code, "fetch_failed");
      assert.equal(error.status, 503);
      return true;
    });
    const fetches = served.fetches;
    await assertRejected(verifier.verify(eddsa()), "fetch_failed", /503/);
    assert.equal(served.fetches, fetches, "the failure is remembered, not refetched at once");
  });

  test("maxStale 0 turns stale serving off; the default is a day", async () => {
    const off = outage({ maxStale: 0 });
    await off.verifier.verify(eddsa());
    off.served.status = 500;
    off.served.now += 300_000;
    await assertRejected(off.verifier.verify(eddsa()), "fetch_failed");

    const byDefault = outage();
    await byDefault.verifier.verify(eddsa());
    byDefault.served.status = 500;
    byDefault.served.now += 300_000 + 86_400_000 - 1;
    assert.equal((await byDefault.cache.get()).keys[0].kid, "ed-1");
    byDefault.served.now += 1;
    await assertRejected(byDefault.cache.get(), "fetch_failed");
    assertRefused(
      () => new JwksCache({ url: URL_, maxStale: 604_801 }),
      "config_invalid",
      /^maxStale/,
    );
  });

  test("without any document a failed first fetch is retried after minRefreshInterval", async () => {
    const { served, verifier } = outage();
    served.status = 500;
    await assertRejected(verifier.verify(eddsa()), "fetch_failed");
    await assertRejected(verifier.verify(eddsa()), "fetch_failed");
    assert.equal(served.fetches, 1);
    served.status = 200;
    served.now += 30_000;
    assert.ok(await verifier.verify(eddsa()));
    assert.equal(served.fetches, 2);
  });

  test("concurrent uses of an expired document share one fetch, failing or not", async () => {
    const { served, verifier } = outage();
    await verifier.verify(eddsa());
    served.status = 500;
    served.now += 300_000;
    const verified = await Promise.all([1, 2, 3].map(() => verifier.verify(eddsa())));
    assert.equal(verified.length, 3);
    assert.equal(served.fetches, 2);
  });
});

describe("JwksCache requests", () => {
  test("the timeout holds for a fetch that ignores the signal", async () => {
    const fetch = () => new Promise(() => {});
    const cache = new JwksCache({ url: URL_, fetch, timeout: 0.05 });
    await assertRejected(cache.get(), "fetch_failed", /timed out after 0\.05 s/);
  });

  test("the timeout holds for a body that stalls: fetch_failed, not response_invalid", async () => {
    let signal;
    const fetch = async (url, init) => {
      signal = init.signal;
      return { ok: true, status: 200, json: () => new Promise(() => {}) };
    };
    const cache = new JwksCache({ url: URL_, fetch, timeout: 0.05 });
    await assertRejected(cache.get(), "fetch_failed", /timed out/);
    assert.ok(signal.aborted, "the request is aborted too");
  });

  test("a fetch resolving to something other than a response is config_invalid", async () => {
    for (const answer of [null, undefined, 42, {}, { ok: true, status: 200 }]) {
      const cache = new JwksCache({ url: URL_, fetch: async () => answer });
      await assertRejected(cache.get(), "config_invalid", /^fetch:/);
    }
  });

  test("keys not for verifying signatures are skipped: use other than sig, key_ops", async () => {
    const enc = edKey("ed-enc");
    const wrap = edKey("ed-wrap");
    const ops = edKey("ed-ops");
    const { served, verifier } = setup();
    served.document = {
      keys: [
        ED.jwk,
        { ...enc.jwk, use: "enc" },
        { ...wrap.jwk, use: undefined, key_ops: ["wrapKey"] },
        { ...ops.jwk, use: undefined, key_ops: ["sign", "verify"] },
      ],
    };
    assert.ok(await verifier.verify(eddsa()));
    assert.ok(await verifier.verify(eddsa(claims(), {}, ops)));
    await assertRejected(verifier.verify(eddsa(claims(), {}, enc)), "token_key_unknown");
    await assertRejected(verifier.verify(eddsa(claims(), {}, wrap)), "token_key_unknown");
  });

  test("a JWKS document over 64 Ki characters is response_invalid", async () => {
    const { served, cache } = setup();
    served.document = { keys: [ED.jwk], padding: "x".repeat(64 * 1024) };
    await assertRejected(cache.get(), "response_invalid", /65536 characters/);
  });

  test("an hs256 option that is not an array is config_invalid", () => {
    const { cache } = setup();
    for (const hs256 of [null, 5, { kid: "k" }]) {
      assertRefused(
        () => new JwksVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: cache, hs256 }),
        "config_invalid",
        /^hs256/,
      );
    }
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
