import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";

import { RevocationFeed, RevocationList, Verifier } from "@portcullis/sdk";

import {
  AUDIENCE,
  HS_KID,
  ISSUER,
  NOW,
  NOW_MS,
  SECRET,
  assertRefused,
  assertRejected,
  claims,
  hs256,
} from "./helpers.mjs";
import { startIssuer, until } from "./server.mjs";

const TENANT = "tnt_00000000000000000000000000000001";

function entry(cursor, kind, value, extra = {}) {
  return { cursor, kind, value, tenant_id: TENANT, expires_at: NOW + 900, ...extra };
}

function verifierWith(revocations) {
  return new Verifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: { hs256: [{ kid: HS_KID, secret: SECRET }] },
    clock: () => NOW_MS,
    revocations,
  });
}

describe("RevocationList", () => {
  test("a jti entry revokes that token only", () => {
    const list = new RevocationList();
    const verifier = verifierWith(list);
    assert.ok(verifier.verify(hs256(claims({ jti: "jti-1" }))));
    assert.equal(list.apply([entry("1", "jti", "jti-1")]), 1);
    assertRefused(() => verifier.verify(hs256(claims({ jti: "jti-1" }))), "token_revoked");
    assert.ok(verifier.verify(hs256(claims({ jti: "jti-2" }))));
  });

  test("a session entry revokes every token of the session", () => {
    const list = new RevocationList();
    list.apply([entry("1", "session", "ses_a")]);
    const verifier = verifierWith(list);
    for (const jti of ["j1", "j2"]) {
      assertRefused(() => verifier.verify(hs256(claims({ sid: "ses_a", jti }))), "token_revoked");
    }
    assert.ok(verifier.verify(hs256(claims({ sid: "ses_b" }))));
  });

  test("a subject entry revokes the tokens issued before issued_before", () => {
    const list = new RevocationList();
    list.apply([entry("1", "subject", "usr_a", { issued_before: NOW - 5 })]);
    const verifier = verifierWith(list);
    const older = hs256(claims({ sub: "usr_a", iat: NOW - 6 }));
    assertRefused(() => verifier.verify(older), "token_revoked");
    assert.ok(verifier.verify(hs256(claims({ sub: "usr_a", iat: NOW - 5 }))));
    const noIat = hs256(claims({ sub: "usr_a", iat: undefined }));
    assertRefused(() => verifier.verify(noIat), "token_revoked", /revoked/);
    assert.ok(verifier.verify(hs256(claims({ sub: "usr_b", iat: NOW - 60 }))));
  });

  test("a subject entry without issued_before revokes every token of the subject", () => {
    const list = new RevocationList();
    list.apply([entry("1", "subject", "usr_a")]);
    assertRefused(
      () => verifierWith(list).verify(hs256(claims({ sub: "usr_a" }))),
      "token_revoked",
    );
  });

  test("applying is idempotent; the cursor is the largest, compared as numbers", () => {
    const list = new RevocationList();
    assert.equal(list.cursor, undefined);
    const entries = [entry("9", "jti", "a"), entry("10", "jti", "b"), entry("2", "session", "s")];
    list.apply(entries);
    list.apply(entries);
    assert.equal(list.size, 3);
    assert.equal(list.cursor, "10");
  });

  test("a batch with one bad entry is refused whole", () => {
    const list = new RevocationList();
    for (const bad of [
      entry("2", "user", "x"),
      entry("2", "jti", "x", { expires_at: "soon" }),
      { cursor: "2", kind: "jti", value: "x" },
      entry("2", "jti", "x", { expires_at: 1e21 }),
    ]) {
      assertRefused(() => list.apply([entry("1", "jti", "ok"), bad]), "revocation_invalid");
    }
    assertRefused(() => list.apply("[]"), "revocation_invalid");
    assertRefused(() => list.apply([entry("1", "jti", 10n)]), "revocation_invalid");
    assert.equal(list.size, 0);
    assert.equal(list.cursor, undefined);
  });

  test("options and times are checked: config_invalid, never a TypeError or a no-op", () => {
    for (const options of [null, 5, "x"]) {
      assertRefused(() => new RevocationList(options), "config_invalid", /^options/);
    }
    const list = new RevocationList();
    list.apply([entry("1", "jti", "j")]);
    for (const now of [1e300, -1, Number.NaN, new Date("x")]) {
      assertRefused(() => list.prune(now), "config_invalid", /^now:/);
    }
    assertRefused(() => new RevocationList({ clock: () => 1e300 }).prune(), "config_invalid");
    assert.equal(list.size, 1);
  });

  test("prune keeps entries 60 s past expires_at, by the clock or a given time", () => {
    let now = NOW_MS;
    const list = new RevocationList({ clock: () => now });
    list.apply([entry("1", "jti", "a", { expires_at: NOW }), entry("2", "jti", "b")]);
    list.prune();
    list.prune((NOW + 60) * 1000);
    assert.equal(list.size, 2);
    now = (NOW + 61) * 1000;
    list.prune();
    assert.equal(list.size, 1);
    list.prune(new Date((NOW + 961) * 1000));
    assert.equal(list.size, 0);
    assertRefused(() => list.prune(-1), "config_invalid");
  });
});

describe("RevocationFeed against a local issuer", () => {
  let issuer;
  before(async () => {
    issuer = await startIssuer();
  });
  after(() => issuer.close());
  beforeEach(() => {
    Object.assign(issuer.feed, { entries: [], status: 200, body: undefined, requests: [] });
  });

  function feedFor(list, options = {}) {
    return new RevocationFeed({ url: issuer.feedUrl, list, clock: () => NOW_MS, ...options });
  }

  test("follows has_more page by page and resumes from the cursor", async () => {
    issuer.feed.entries = [
      entry("101", "jti", "jti-1"),
      entry("102", "session", "ses_1"),
      entry("103", "subject", "usr_1", { issued_before: NOW }),
      entry("104", "jti", "jti-4"),
      entry("105", "jti", "jti-5"),
    ];
    const list = new RevocationList();
    const feed = feedFor(list, { limit: 2 });
    assert.equal(feed.cursor, undefined);
    assert.equal(feed.syncedAt, undefined);
    assert.equal(await feed.poll(), 5);
    assert.deepEqual(issuer.feed.requests, [
      "/v1/revocations?limit=2",
      "/v1/revocations?since=102&limit=2",
      "/v1/revocations?since=104&limit=2",
    ]);
    assert.equal(feed.cursor, "105");
    assert.equal(list.size, 5);
    assert.equal(feed.syncedAt, NOW_MS);
    const verifier = verifierWith(list);
    assertRefused(() => verifier.verify(hs256(claims({ sid: "ses_1" }))), "token_revoked");

    issuer.feed.requests = [];
    assert.equal(await feed.poll(), 0);
    assert.deepEqual(issuer.feed.requests, ["/v1/revocations?since=105&limit=2"]);
    issuer.feed.entries.push(entry("106", "jti", "jti-6"));
    assert.equal(await feed.poll(), 1);
    assert.equal(feed.cursor, "106");
    assertRefused(() => verifier.verify(hs256(claims({ jti: "jti-6" }))), "token_revoked");
  });

  test("starts from the cursor of a list filled elsewhere", async () => {
    const list = new RevocationList();
    list.apply([entry("41", "jti", "old")]);
    issuer.feed.entries = [entry("41", "jti", "old"), entry("42", "jti", "new")];
    await feedFor(list).poll();
    assert.deepEqual(issuer.feed.requests, ["/v1/revocations?since=41"]);
    assert.equal(list.size, 2);
  });

  test("a failed page leaves the pages before it applied and the cursor after them", async () => {
    issuer.feed.entries = [entry("1", "jti", "a"), entry("2", "jti", "b"), entry("3", "flag", "c")];
    const list = new RevocationList();
    const feed = feedFor(list, { limit: 2 });
    await assertRejected(feed.poll(), "response_invalid", /feed/);
    assert.equal(feed.cursor, "2");
    assert.equal(list.size, 2);
    assert.equal(feed.syncedAt, undefined);
  });

  test("HTTP errors are fetch_failed with the status, and change nothing", async () => {
    issuer.feed.status = 503;
    const list = new RevocationList();
    const feed = feedFor(list);
    await assert.rejects(feed.poll(), (error) => {
      assert.equal(error.code, "fetch_failed");
      assert.equal(error.status, 503);
      return true;
    });
    assert.equal(feed.cursor, undefined);
    const unreachable = new RevocationFeed({ url: "http://127.0.0.1:9/v1/revocations", list });
    await assertRejected(unreachable.poll(), "fetch_failed");
  });

  test("bodies not of the feed's shape are response_invalid", async () => {
    const list = new RevocationList();
    for (const body of [
      "not json",
      "[]",
      JSON.stringify({ entries: [], next_cursor: 5, has_more: false }),
      JSON.stringify({ entries: [], next_cursor: "-1", has_more: false }),
      JSON.stringify({ entries: {}, next_cursor: "1", has_more: false }),
      JSON.stringify({ entries: [], next_cursor: "1" }),
    ]) {
      issuer.feed.body = body;
      await assertRejected(feedFor(list).poll(), "response_invalid");
    }
    assert.equal(list.size, 0);
  });

  test("a next_cursor before the cursor asked for is refused; the cursor stays", async () => {
    const list = new RevocationList();
    list.apply([entry("50", "jti", "seed")]);
    const feed = feedFor(list);
    issuer.feed.body = JSON.stringify({
      entries: [entry("7", "jti", "old")],
      next_cursor: "7",
      has_more: false,
    });
    await assertRejected(feed.poll(), "response_invalid", /next_cursor 7 is before/);
    assert.equal(feed.cursor, "50");
    assert.equal(list.size, 1, "the page was not applied");
    assert.deepEqual(issuer.feed.requests, ["/v1/revocations?since=50"]);
  });

  test("has_more without a new cursor stops instead of looping", async () => {
    issuer.feed.body = JSON.stringify({ entries: [], next_cursor: "0", has_more: true });
    const list = new RevocationList();
    list.apply([entry("0", "jti", "seed")]);
    await assertRejected(feedFor(list).poll(), "response_invalid", /has_more/);
    assert.equal(issuer.feed.requests.length, 1);
  });

  test("concurrent polls share one run", async () => {
    issuer.feed.entries = [entry("1", "jti", "a")];
    const feed = feedFor(new RevocationList());
    const counts = await Promise.all([feed.poll(), feed.poll(), feed.poll()]);
    assert.deepEqual(counts, [1, 1, 1]);
    assert.equal(issuer.feed.requests.length, 1);
  });

  test("a poll prunes entries that can no longer match", async () => {
    issuer.feed.entries = [
      entry("1", "jti", "a", { expires_at: NOW - 61 }),
      entry("2", "jti", "b"),
    ];
    const list = new RevocationList();
    await feedFor(list).poll();
    assert.equal(list.size, 1);
  });

  test("start polls until stop, reporting failures and carrying on", async () => {
    const list = new RevocationList();
    const feed = feedFor(list);
    const errors = [];
    feed.start({ interval: 0.01, onError: (error) => errors.push(error) });
    assertRefused(() => feed.start({ onError() {} }), "config_invalid", /already/);
    issuer.feed.entries.push(entry("7", "jti", "late"));
    await until(() => list.size === 1);
    issuer.feed.status = 500;
    await until(() => errors.length >= 2);
    assert.ok(errors.every((error) => error.code === "fetch_failed" && error.status === 500));
    issuer.feed.status = 200;
    issuer.feed.entries.push(entry("8", "jti", "later"));
    await until(() => list.size === 2);
    feed.stop();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const seen = issuer.feed.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(issuer.feed.requests.length, seen, "no request after stop");
  });

  test("options are checked", () => {
    const list = new RevocationList();
    assertRefused(
      () => new RevocationFeed({ url: "/v1/revocations", list }),
      "config_invalid",
      /^url/,
    );
    assertRefused(() => new RevocationFeed({ url: issuer.feedUrl }), "config_invalid", /^list/);
    assertRefused(() => feedFor(list, { limit: 1001 }), "config_invalid", /^limit/);
    assertRefused(() => feedFor(list, { limit: 0 }), "config_invalid", /^limit/);
    assertRefused(() => feedFor(list).start({}), "config_invalid", /^onError/);
    assertRefused(() => feedFor(list).start({ interval: 0, onError() {} }), "config_invalid");
  });
});
