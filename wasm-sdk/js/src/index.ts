// The public API, the same from every entry point. The entries differ only in how they load
// the WebAssembly module (node.ts, web.ts, workerd.ts).
export { PortcullisError } from "./errors.js";
export type {
  PortcullisErrorCode,
  PortcullisErrorOptions,
  SdkErrorCode,
  TokenErrorCode,
} from "./errors.js";
export type { Fetch, FetchInit, FetchResponse } from "./http.js";
export { JwksCache, JwksVerifier } from "./jwks.js";
export type { JwksCacheOptions, JwksVerifierOptions } from "./jwks.js";
export { hasAll, hasAny, hasPermission } from "./permissions.js";
export type { Granted } from "./permissions.js";
export { RevocationFeed, RevocationList } from "./revocations.js";
export type {
  PollingOptions,
  RevocationEntry,
  RevocationFeedOptions,
  RevocationListOptions,
  RevocationPage,
} from "./revocations.js";
export type { Clock, Instant } from "./time.js";
export { Verifier } from "./verifier.js";
export type {
  Claims,
  Hs256Key,
  Jwk,
  JwksDocument,
  KeySource,
  Policy,
  VerifierOptions,
  VerifyOptions,
} from "./verifier.js";
