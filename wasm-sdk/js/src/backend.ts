import type * as Glue from "../wasm/node/portcullis_wasm_sdk.js";

import { PortcullisError } from "./errors.js";

/**
 * What the TypeScript layer uses of the wasm-bindgen glue. The `nodejs` and `web` builds
 * export the same items (the web one adds its `init` functions), so either can back the SDK.
 * @internal
 */
export type Backend = Pick<
  typeof Glue,
  "WasmKeyRing" | "WasmVerifier" | "WasmRevocationList" | "hasPermission" | "hasAll" | "hasAny"
>;

let bound: Backend | undefined;

/**
 * Makes `glue` the backend of every object created from now on. The first call wins: the
 * objects of one glue must never be handed to the other's functions (a revocation list of one
 * wasm instance to a verifier of another), and both builds behave identically, so a process
 * that loads both the Node and the web entry keeps using the first one.
 * @internal
 */
export function bind(glue: Backend): void {
  bound ??= glue;
}

/** The bound backend; only the web entry can be used before one is bound. @internal */
export function backend(): Backend {
  if (bound === undefined) {
    throw new PortcullisError(
      "not_initialized",
      "call init() or initSync() from '@portcullis/sdk/web' before using the SDK",
    );
  }
  return bound;
}
