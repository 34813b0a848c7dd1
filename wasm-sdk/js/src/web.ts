// Browsers and bundlers: the `web` build of the wasm module, loaded by `init()` (which
// fetches it next to this file, or takes it as given) or `initSync()` (bytes or a compiled
// module). The SDK refuses to work (`not_initialized`) until one of them has run.
import initWasm, { initSync as initWasmSync } from "../wasm/web/portcullis_wasm_sdk.js";
import * as glue from "../wasm/web/portcullis_wasm_sdk.js";

import { bind } from "./backend.js";
import { PortcullisError, configError, messageOf } from "./errors.js";
import type { WasmSource, WasmSyncSource } from "./loading.js";

export * from "./index.js";
export type { WasmSource, WasmSyncSource };

/**
 * Loads the WebAssembly module. Without `source` it fetches the package's own `.wasm` file,
 * found through `new URL(…, import.meta.url)` (which bundlers such as Vite and webpack
 * follow and ship). In Node, where `fetch` cannot read `file:` URLs, a `file:` URL (the
 * default one included) is read from disk instead. Calling it again does nothing.
 *
 * @throws {PortcullisError} `wasm_load_failed` when the module cannot be fetched, read or
 *   compiled.
 */
export async function init(source?: WasmSource): Promise<void> {
  try {
    const file = nodeFile(source);
    const bytes = file === undefined ? undefined : await readNodeFile(file);
    await initWasm({ module_or_path: bytes ?? source });
  } catch (cause) {
    throw loadFailed("init", cause);
  }
  bind(glue);
}

/**
 * Loads the WebAssembly module from its bytes or a compiled module, synchronously.
 *
 * @throws {PortcullisError} `config_invalid` without a source; `wasm_load_failed` when the
 *   bytes are not a valid module.
 */
export function initSync(source: WasmSyncSource): void {
  if (
    !(source instanceof WebAssembly.Module) &&
    !ArrayBuffer.isView(source) &&
    !(source instanceof ArrayBuffer)
  ) {
    throw configError("initSync", "needs the module's bytes or a compiled WebAssembly.Module");
  }
  try {
    initWasmSync({ module: source });
  } catch (cause) {
    throw loadFailed("initSync", cause);
  }
  bind(glue);
}

function loadFailed(what: string, cause: unknown): PortcullisError {
  const message = `${what}: cannot load the WebAssembly module: ${messageOf(cause)}`;
  return new PortcullisError("wasm_load_failed", message, { cause });
}

/** The module's own file next to the glue, as the glue finds it when given no source. */
const OWN_WASM = ["..", "wasm", "web", "portcullis_wasm_sdk_bg.wasm"].join("/");

/**
 * The `file:` URL to read `source` from when running in Node, else `undefined` (`fetch` it).
 * The default file is named through a computed path so bundlers, which ship the glue's own
 * `new URL(…, import.meta.url)`, do not ship it twice.
 */
function nodeFile(source: WasmSource | undefined): URL | undefined {
  const node = (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions
    ?.node;
  if (typeof node !== "string") {
    return undefined;
  }
  const url =
    source === undefined
      ? new URL(OWN_WASM, import.meta.url)
      : typeof source === "string" || source instanceof URL
        ? URL.canParse(String(source))
          ? new URL(String(source))
          : undefined
        : undefined;
  return url?.protocol === "file:" ? url : undefined;
}

/**
 * The bytes of `file`, through `node:fs` imported only here, at run time, so the entry has no
 * static `node:` import for a browser bundler to trip over.
 */
async function readNodeFile(file: URL): Promise<Uint8Array> {
  const specifier = "node:fs/promises";
  const fs = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as {
    readFile(path: URL): Promise<Uint8Array>;
  };
  return fs.readFile(file);
}
