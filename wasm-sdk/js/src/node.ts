// Node ≥ 20, as ES module and as CommonJS: the `nodejs` build of the wasm module, which
// loads itself synchronously from the package directory when first imported.
import * as glue from "../wasm/node/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";

bind(glue);

export * from "./index.js";
