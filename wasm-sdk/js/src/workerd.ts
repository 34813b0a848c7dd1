// Cloudflare Workers (workerd): the bundler (wrangler) turns the `.wasm` import into a
// compiled `WebAssembly.Module`, the only way workerd allows, and the module is instantiated
// synchronously on import, so the SDK is ready without an `init()`.
import wasmModule from "../wasm/web/portcullis_wasm_sdk_bg.wasm";
import { initSync } from "../wasm/web/portcullis_wasm_sdk.js";
import * as glue from "../wasm/web/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";

initSync({ module: wasmModule });
bind(glue);

export * from "./index.js";
