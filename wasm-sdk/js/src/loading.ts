// What init() and initSync() take, the same in every entry: the web entry loads the module
// from it, the Node and workerd entries, ready on import, ignore it.

/**
 * Where the WebAssembly module comes from: its URL, a `fetch` response for it, its bytes,
 * or the compiled module.
 */
export type WasmSource =
  string | URL | Request | Response | PromiseLike<Response> | BufferSource | WebAssembly.Module;

/** The module's bytes or compiled module, for `initSync`. */
export type WasmSyncSource = BufferSource | WebAssembly.Module;

/**
 * `init` of an entry that loads the module on import (Node, workerd): does nothing, so code
 * written for the web entry (`await init()`) runs unchanged. The `source` is not read.
 */
export async function readyInit(source?: WasmSource): Promise<void> {
  void source;
}

/** `initSync` of an entry that loads the module on import: does nothing, like `init`. */
export function readyInitSync(source: WasmSyncSource): void {
  void source;
}
