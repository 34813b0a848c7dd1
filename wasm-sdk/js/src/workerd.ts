// Cloudflare Workers (workerd): the bundler (wrangler) turns the `.wasm` import into a
// compiled `WebAssembly.Module`, the only way workerd allows, and the module is instantiated
// synchronously on import, so the SDK is ready without an `init()`.
import wasmModule from "../wasm/web/portcullis_wasm_sdk_bg.wasm";
import { initSync as initWasmSync } from "../wasm/web/portcullis_wasm_sdk.js";
import * as glue from "../wasm/web/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";
import { readyInit, readyInitSync } from "./loading.js";
import type { WasmSource, WasmSyncSource } from "./loading.js";

initWasmSync({ module: wasmModule });
bind(glue);

export * from "./index.js";
export type { WasmSource, WasmSyncSource };

/**
 * Does nothing: this entry loads the WebAssembly module on import. It exists so that code
 * written for the web entry (`await init()`) also runs in Workers.
 */
export const init: (source?: WasmSource) => Promise<void> = readyInit;

/** Does nothing, like {@link init}: the module is loaded on import. */
export const initSync: (source: WasmSyncSource) => void = readyInitSync;
