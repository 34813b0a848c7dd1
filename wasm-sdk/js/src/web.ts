// Browsers and bundlers: the `web` build of the wasm module, loaded by `init()` (which
// fetches it next to this file, or takes it as given) or `initSync()` (bytes or a compiled
// module). The SDK refuses to work (`not_initialized`) until one of them has run.
import initWasm, { initSync as initWasmSync } from "../wasm/web/portcullis_wasm_sdk.js";
import * as glue from "../wasm/web/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";

/**
 * Where the WebAssembly module comes from: its URL, a `fetch` response for it, its bytes,
 * or the compiled module.
 */
export type WasmSource =
  string | URL | Request | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module;

/** The module's bytes or compiled module, for {@link initSync}. */
export type WasmSyncSource = BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module. Without `source` it fetches the package's own `.wasm` file,
 * found through `new URL(…, import.meta.url)` (which bundlers such as Vite and webpack
 * follow and ship). Calling it again does nothing.
 */
export async function init(source?: WasmSource): Promise<void> {
  await initWasm(source === undefined ? undefined : { module_or_path: source });
  bind(glue);
}

/** Loads the WebAssembly module from its bytes or a compiled module, synchronously. */
export function initSync(source: WasmSyncSource): void {
  initWasmSync({ module: source });
  bind(glue);
}

export * from "./index.js";
