/**
 * The codes the core gives a refused token. They are the codes of `TokenError::code` in
 * `portcullis-core`, the issuer and the edge, so one table of codes serves every component.
 */
export type TokenErrorCode =
  | "token_malformed"
  | "token_algorithm_unsupported"
  | "token_key_unknown"
  | "token_algorithm_mismatch"
  | "token_signature_invalid"
  | "token_type_invalid"
  | "token_claim_invalid"
  | "token_expired"
  | "token_not_yet_valid"
  | "token_issuer_invalid"
  | "token_audience_invalid"
  | "token_revoked";

/**
 * The codes of failures that are not a verdict on a token.
 *
 * - `config_invalid`: an option was refused (a verifier without issuer, audience or keys, a
 *   leeway above 60 s, a short secret, a JWKS with private or unsupported keys, a bad time).
 * - `fetch_failed`: a JWKS or revocation-feed request failed or answered a non-2xx status.
 * - `response_invalid`: a JWKS or revocation-feed response was not of the expected shape.
 * - `revocation_invalid`: revocation entries not of the feed's shape; none was applied.
 * - `not_initialized`: the web entry was used before `init()` or `initSync()`.
 * - `wasm_load_failed`: `init()` or `initSync()` could not load the WebAssembly module (not
 *   found, not fetchable, or not a valid module).
 */
export type SdkErrorCode =
  | "config_invalid"
  | "fetch_failed"
  | "response_invalid"
  | "revocation_invalid"
  | "not_initialized"
  | "wasm_load_failed";

/** Every code a {@link PortcullisError} can carry. */
export type PortcullisErrorCode = TokenErrorCode | SdkErrorCode;

/** Extra detail of a {@link PortcullisError}. */
export interface PortcullisErrorOptions {
  /** The underlying error, e.g. the network error of a failed fetch. */
  readonly cause?: unknown;
  /** The HTTP status of a `fetch_failed` response. */
  readonly status?: number;
}

/**
 * The brand every {@link PortcullisError} carries. It is registered (`Symbol.for`), so the
 * ES module and CommonJS copies of the package, which each define their own class, recognise
 * each other's errors.
 */
const BRAND: unique symbol = Symbol.for("portcullis.error") as never;

/**
 * The one error type the SDK throws. Branch on `code`, which is stable; the message is for
 * people and may change.
 *
 * `error instanceof PortcullisError` holds for errors of any copy of the package (its ES module
 * and its CommonJS build, loaded side by side), since it checks a brand, not the prototype.
 */
export class PortcullisError extends Error {
  /** Whether `value` is a PortcullisError of any copy of the package; subclasses as usual. */
  static override [Symbol.hasInstance](value: unknown): value is PortcullisError {
    if (this !== PortcullisError) {
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }
    return typeof value === "object" && value !== null && BRAND in value;
  }

  /** The stable machine code. */
  readonly code: PortcullisErrorCode;
  /** The HTTP status, for a `fetch_failed` error that got a response. */
  readonly status: number | undefined;

  constructor(code: PortcullisErrorCode, message: string, options: PortcullisErrorOptions = {}) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.status = options.status;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return "PortcullisError";
  }
}

/** A `config_invalid` error naming the refused option. */
export function configError(option: string, problem: string, cause?: unknown): PortcullisError {
  const message = `${option}: ${problem}`;
  return new PortcullisError("config_invalid", message, cause === undefined ? {} : { cause });
}

/** The message of a value thrown by the wasm boundary (a `JsError` is an `Error`). */
export function messageOf(thrown: unknown): string {
  return thrown instanceof Error ? thrown.message : String(thrown);
}
