// The differential corpus through the SDK's Node entry. PORTCULLIS_CORPUS names the corpus the
// native core wrote (scripts/test-browser.mjs sets it); without it this test fails.
import { test } from "node:test";
import { readFileSync } from "node:fs";

import * as sdk from "@portcullis/sdk";

import { differential } from "./corpus.mjs";

const path = process.env.PORTCULLIS_CORPUS;
if (!path) {
  throw new Error("PORTCULLIS_CORPUS is not set: run `npm run test:browser`");
}
for (const [name, run] of differential(sdk, JSON.parse(readFileSync(path, "utf8")))) {
  test(`node differential: ${name}`, run);
}
