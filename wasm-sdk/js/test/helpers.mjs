// The shared fixtures of the Node tests: the tokens of ./tokens.mjs and assertions on the
// SDK's errors.
import assert from "node:assert/strict";

import { PortcullisError } from "@portcullis/sdk";

export * from "./tokens.mjs";

/** Asserts that `run` throws a PortcullisError with `code` (and a message matching `text`). */
export function assertRefused(run, code, text) {
  assert.throws(run, (error) => {
    assert.ok(error instanceof PortcullisError, `not a PortcullisError: ${error}`);
    assert.equal(error.name, "PortcullisError");
    assert.equal(error.code, code, error.message);
    if (text !== undefined) {
      assert.match(error.message, text);
    }
    return true;
  });
}

/** As {@link assertRefused}, for a promise. */
export async function assertRejected(promise, code, text) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof PortcullisError, `not a PortcullisError: ${error}`);
    assert.equal(error.code, code, error.message);
    if (text !== undefined) {
      assert.match(error.message, text);
    }
    return true;
  });
}
