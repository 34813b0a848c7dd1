// Node ≥ 20, as ES module and as CommonJS: the `nodejs` build of the wasm module, which
// loads itself synchronously from the package directory when first imported.
import * as glue from "../wasm/node/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";
import { readyInit, readyInitSync } from "./loading.js";
import type { WasmSource, WasmSyncSource } from "./loading.js";

bind(glue);

export * from "./index.js";
export type { WasmSource, WasmSyncSource };

/**
 * Does nothing: this entry loads the WebAssembly module on import. It exists so that code
 * written for the web entry (`await init()`) also runs in Node.
 */
export const init: (source?: WasmSource) => Promise<void> = readyInit;

/** Does nothing, like {@link init}: the module is loaded on import. */
export const initSync: (source: WasmSyncSource) => void = readyInitSync;
