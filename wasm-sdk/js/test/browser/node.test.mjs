// The portable suite (suite.mjs) under node:test, through the package's Node entry: the same
// cases chromium.test.mjs runs in the browser.
import { test } from "node:test";

import * as sdk from "@portcullis/sdk";

import { suite } from "./suite.mjs";

for (const [name, run] of await suite(sdk)) {
  test(`node: ${name}`, run);
}
