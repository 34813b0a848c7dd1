import { test } from "node:test";
import assert from "node:assert/strict";

import { Verifier, hasAll, hasAny, hasPermission } from "@portcullis/sdk";

import { AUDIENCE, HS_KID, ISSUER, NOW_MS, SECRET, claims, hs256 } from "./helpers.mjs";

test("granted wildcards cover concrete permissions", () => {
  assert.ok(hasPermission(["users:*"], "users:read"));
  assert.ok(hasPermission(["*:read"], "billing:read"));
  assert.ok(hasPermission(["*"], "billing:refund"));
  assert.ok(hasPermission(["*:*"], "billing:refund"));
  assert.ok(hasPermission(["users:read"], "users:read"));
  assert.ok(!hasPermission(["users:read"], "users:write"));
  assert.ok(!hasPermission(["users:*"], "billing:read"));
  assert.ok(!hasPermission(["*:read"], "billing:write"));
});

test("a required wildcard needs an equal or broader grant", () => {
  assert.ok(!hasPermission(["users:read", "users:write"], "users:*"));
  assert.ok(hasPermission(["users:*"], "users:*"));
  assert.ok(hasPermission(["*"], "users:*"));
  assert.ok(!hasPermission(["users:*"], "*"));
  assert.ok(!hasPermission(["*:read"], "*"));
});

test("malformed input fails closed", () => {
  assert.ok(!hasPermission(["Users:*", "users:read:x", "", "user*:read"], "users:read"));
  assert.ok(!hasPermission(["*"], "Users:read"));
  assert.ok(!hasPermission(["*"], ""));
  assert.ok(!hasPermission(["x\n*"], "users:read"), "one malformed grant, not a wildcard");
  assert.ok(!hasPermission([7, null, {}], "users:read"));
  assert.ok(hasPermission([7, "users:read"], "users:read"), "non-strings are skipped");
  assert.ok(!hasPermission([{ toString: () => "*" }], "users:read"), "never stringified");
  assert.ok(!hasPermission(["*"], 7));
  assert.ok(!hasPermission(null, "users:read"));
  assert.ok(!hasAll(["*"], "users:read"), "required must be an array");
  assert.ok(!hasAny(["*"], ["users:read", 7]));
});

test("hasAll needs every requirement, hasAny one; empty lists answer safely", () => {
  const granted = ["users:read", "billing:*"];
  assert.ok(hasAll(granted, ["users:read", "billing:refund"]));
  assert.ok(!hasAll(granted, ["users:read", "users:write"]));
  assert.ok(hasAll(granted, []));
  assert.ok(hasAny(granted, ["users:write", "billing:x"]));
  assert.ok(!hasAny(granted, ["users:write"]));
  assert.ok(!hasAny(granted, []));
});

test("verified claims can be passed directly", () => {
  const verifier = new Verifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    keys: { hs256: [{ kid: HS_KID, secret: SECRET }] },
    clock: () => NOW_MS,
  });
  const verified = verifier.verify(hs256(claims({ perms: ["billing:*"] })));
  assert.ok(hasPermission(verified, "billing:refund"));
  assert.ok(!hasPermission(verified, "users:read"));
  assert.ok(hasAll(verified, ["billing:read", "billing:refund"]));
  assert.ok(!hasAny(verified, ["users:read"]));
  assert.ok(!hasPermission(verifier.verify(hs256(claims({ perms: undefined }))), "a:b"));
});
