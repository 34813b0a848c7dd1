import { backend } from "./backend.js";
import { PortcullisError, configError, messageOf } from "./errors.js";
import type { PortcullisErrorCode, TokenErrorCode } from "./errors.js";
import { isObject } from "./http.js";
import { revocationSet } from "./revocations.js";
import type { RevocationList } from "./revocations.js";
import { checkedClock, unixSeconds } from "./time.js";
import type { Clock, Instant } from "./time.js";

type WasmVerifier = InstanceType<ReturnType<typeof backend>["WasmVerifier"]>;
type WasmRevocationList = InstanceType<ReturnType<typeof backend>["WasmRevocationList"]>;

/** The claims of a verified access token, as the core read them. */
export interface Claims {
  /** Issuer; always the expected issuer. */
  readonly iss: string;
  /** Subject, `usr_…`. */
  readonly sub: string;
  /** Audience: a string, or an array that contains the expected audience. */
  readonly aud: string | readonly string[];
  /** Expiry, unix seconds. */
  readonly exp: number;
  /** Not-before, unix seconds. */
  readonly nbf?: number;
  /** Issued-at, unix seconds. */
  readonly iat?: number;
  /** Token identifier (a UUIDv7), what a `jti` revocation names. */
  readonly jti?: string;
  /** Tenant identifier, `tnt_…`. */
  readonly tid?: string;
  /** Session identifier, `ses_…`, what a `session` revocation names. */
  readonly sid?: string;
  /** Role names; empty when the token has none. */
  readonly roles: readonly string[];
  /** Permissions, `resource:action` with `*` wildcards; empty when the token has none. */
  readonly perms: readonly string[];
  /** Authentication method references (RFC 8176), e.g. `["pwd", "otp"]`. */
  readonly amr: readonly string[];
}

/** One HS256 secret, for server-side verifiers that share the issuer's secret. */
export interface Hs256Key {
  /** The `kid` tokens signed with this secret carry. */
  readonly kid: string;
  /** The secret, at least 32 bytes (decode the issuer's base64url setting first). */
  readonly secret: Uint8Array;
}

/** One JSON Web Key. The core accepts Ed25519 public keys only (`kty` `OKP`). */
export interface Jwk {
  readonly kty: string;
  readonly crv?: string;
  readonly kid?: string;
  readonly x?: string;
  readonly alg?: string;
  readonly use?: string;
  readonly [member: string]: unknown;
}

/** A JWKS document, as `GET /.well-known/jwks.json` serves it. */
export interface JwksDocument {
  readonly keys: readonly Jwk[];
}

/**
 * The keys a verifier trusts. Each key owns its algorithm: HS256 for secrets, EdDSA for JWKS
 * keys. A token's `alg` must equal the algorithm of the key its `kid` names and never picks
 * one.
 */
export interface KeySource {
  /** HS256 secrets. Keep them on servers: whoever holds one can mint tokens. */
  readonly hs256?: readonly Hs256Key[];
  /** A JWKS document of Ed25519 public keys, parsed or as its JSON text. */
  readonly jwks?: JwksDocument | string;
}

/** What every token must satisfy, shared by {@link Verifier} and `JwksVerifier`. */
export interface Policy {
  /** The exact `iss` required. Required. */
  readonly issuer: string;
  /** The audience `aud` must be or contain, exactly. Required. */
  readonly audience: string;
  /**
   * Seconds of clock skew tolerated on `exp`, `nbf` and `iat`: a whole number from 0 to 60.
   * Default 30. A larger leeway lets an expired, stolen token work for longer.
   */
  readonly leeway?: number;
  /**
   * The header `typ` required, compared case-insensitively with an optional `application/`
   * prefix. Default `"at+jwt"` (RFC 9068 access tokens), which stops an ID token signed with
   * the same key from passing as an access token. `null` accepts any `typ`: weaker.
   */
  readonly typ?: string | null;
  /** Revocations to consult: a token they revoke is refused with `token_revoked`. */
  readonly revocations?: RevocationList;
  /** The clock `verify` reads when not given `now`. Default `Date.now`. */
  readonly clock?: Clock;
}

/** The options of a {@link Verifier}. */
export interface VerifierOptions extends Policy {
  /** The trusted keys; at least one. Required. */
  readonly keys: KeySource;
}

/** Options of one `verify` call. */
export interface VerifyOptions {
  /** The time to verify at, instead of reading the verifier's clock. */
  readonly now?: Instant;
}

/** A {@link Policy} checked once, in the form the wasm verifier takes. @internal */
export interface CheckedPolicy {
  readonly issuer: string;
  readonly audience: string;
  readonly leeway: number;
  readonly typ: string | undefined;
  readonly anyTyp: boolean;
  readonly revocations: WasmRevocationList | undefined;
  readonly clock: Clock;
}

const DEFAULT_LEEWAY = 30;
const MAX_LEEWAY = 60;
/** The first character of a claims answer in JSON; an error answer starts with its code. */
const OPEN_BRACE = 0x7b;
/** The first character of a claims answer in the compact form (`wasm-sdk/src/compact.rs`). */
const COMPACT = 0x01;
/** The codes of a compact answer's slots: absent, one value, or `LIST + n` items. */
const ABSENT = 1;
const SCALAR = 2;
const LIST = 3;
/**
 * The core refuses tokens over 8 KiB (`MAX_TOKEN_LEN`, `TokenError::TooLarge`), so a reused
 * buffer of three bytes per UTF-16 unit (the most `encodeInto` writes) holds every token it
 * could accept. A token of more UTF-16 units has more UTF-8 bytes, so it is refused here, with
 * the core's code and message, before it is copied anywhere.
 */
const MAX_TOKEN_UNITS = 8 * 1024;
/** The core's code and message for a token over its limit (`TokenError::TooLarge`). */
const TOO_LARGE = ["token_malformed", "token too large"] as const;
/**
 * The longest HS256 secret taken, in bytes: far more than HMAC-SHA256 can use (a longer key is
 * hashed down to 32 bytes), and a bound on what is copied into wasm memory.
 */
export const MAX_SECRET_BYTES = 1024;
/** The longest JWKS document taken, in characters of JSON text (hundreds of Ed25519 keys). */
export const MAX_JWKS_CHARS = 64 * 1024;
const encoder = new TextEncoder();
let tokenBuffer: Uint8Array | undefined;

/** Checks the options every verifier shares, naming the one refused. @internal */
export function checkPolicy(options: Policy): CheckedPolicy {
  if (typeof options !== "object" || options === null) {
    throw configError("options", "required: { issuer, audience, keys }");
  }
  const { issuer, audience, leeway = DEFAULT_LEEWAY, typ, revocations } = options;
  if (typeof issuer !== "string" || issuer === "") {
    throw configError("issuer", "required: the exact `iss` of the issuer's tokens");
  }
  if (typeof audience !== "string" || audience === "") {
    throw configError("audience", "required: the audience this service accepts");
  }
  if (!Number.isInteger(leeway) || leeway < 0 || leeway > MAX_LEEWAY) {
    throw configError("leeway", `must be a whole number of seconds from 0 to ${MAX_LEEWAY}`);
  }
  if (typ !== undefined && typ !== null && (typeof typ !== "string" || typ === "")) {
    throw configError("typ", "must be a non-empty string, or null to accept any typ");
  }
  return {
    issuer,
    audience,
    leeway,
    typ: typ ?? undefined,
    anyTyp: typ === null,
    revocations: revocations === undefined ? undefined : revocationSet(revocations, "revocations"),
    clock: checkedClock(options.clock, "clock"),
  };
}

/**
 * Verifies Portcullis access tokens synchronously, with the rules of `portcullis-core`: the
 * same verdict and error code as the issuer and the edge give the same token.
 *
 * ```ts
 * const verifier = new Verifier({
 *   issuer: "https://auth.example.com",
 *   audience: "portcullis",
 *   keys: { jwks: await (await fetch("https://auth.example.com/.well-known/jwks.json")).json() },
 * });
 * const claims = verifier.verify(token); // throws PortcullisError, e.g. code "token_expired"
 * ```
 */
export class Verifier {
  readonly #inner: WasmVerifier;
  readonly #revocations: WasmRevocationList | undefined;
  readonly #clock: Clock;
  readonly #kids: readonly string[];

  /**
   * @throws {PortcullisError} `config_invalid` naming the refused option: no issuer, no
   *   audience, no keys, a leeway outside 0–60, a secret under 32 bytes, a JWKS document with
   *   other than Ed25519 public keys, or one `kid` twice.
   */
  constructor(options: VerifierOptions) {
    const policy = checkPolicy(options);
    const ring = keyRing(options.keys);
    this.#kids = Object.freeze(ring.kids());
    try {
      this.#inner = new (backend().WasmVerifier)(
        ring,
        policy.issuer,
        policy.audience,
        policy.leeway,
        policy.typ,
        policy.anyTyp,
      );
    } catch (thrown) {
      throw configError("options", messageOf(thrown), thrown);
    }
    this.#revocations = policy.revocations;
    this.#clock = policy.clock;
  }

  /** The `kid` of every trusted key, sorted. */
  get kids(): readonly string[] {
    return this.#kids;
  }

  /**
   * Verifies `token` and returns its claims.
   *
   * @throws {PortcullisError} with a {@link TokenErrorCode} when the token is refused, or
   *   `config_invalid` when `now` (or the clock's answer) is not a valid time.
   */
  verify(token: string, options?: VerifyOptions): Claims {
    const at = options?.now;
    const now = at === undefined ? unixSeconds(this.#clock(), "clock()") : unixSeconds(at, "now");
    if (typeof token !== "string") {
      throw new PortcullisError("token_malformed", "the token must be a string");
    }
    if (token.length > MAX_TOKEN_UNITS) {
      throw new PortcullisError(...TOO_LARGE);
    }
    const bytes = utf8(token);
    const answer =
      this.#revocations === undefined
        ? this.#inner.verify(bytes, now)
        : this.#inner.verifyUnrevoked(bytes, now, this.#revocations);
    const first = answer.charCodeAt(0);
    if (first === COMPACT) {
      return compactClaims(answer);
    }
    if (first === OPEN_BRACE) {
      return JSON.parse(answer) as Claims;
    }
    const space = answer.indexOf(" ");
    // The core answers `<code> <message>` with one of its stable token codes (or, for a time
    // the checks above let through, which they do not, `config_invalid`).
    const code = answer.slice(0, space) as TokenErrorCode | "config_invalid";
    throw new PortcullisError(code satisfies PortcullisErrorCode, answer.slice(space + 1));
  }
}

/**
 * The UTF-8 bytes of `token`, written by the engine's native encoder into a buffer reused from
 * call to call (the wasm glue copies them into wasm memory at once). Lone surrogates become
 * U+FFFD, as the glue's own string passing does.
 */
function utf8(token: string): Uint8Array {
  tokenBuffer ??= new Uint8Array(3 * MAX_TOKEN_UNITS);
  return tokenBuffer.subarray(0, encoder.encodeInto(token, tokenBuffer).written);
}

/**
 * The claims of a compact answer: U+0001 and one code per member slot, then the values, each
 * after a NUL. The slots and their order are those of `SLOTS` in `wasm-sdk/src/compact.rs`
 * (the core's order); members are added in that order, as `JSON.parse` would add them.
 */
function compactClaims(answer: string): Claims {
  const part = answer.split("\0");
  const head = part[0] as string;
  let at = 1;
  const string = (): string => part[at++] as string;
  const number = (): number => Number(part[at++]);
  const list = (code: number): string[] => part.slice(at, (at += code - LIST));
  const claims: Record<string, unknown> = { iss: string(), sub: string() };
  const aud = head.charCodeAt(3);
  claims["aud"] = aud === SCALAR ? string() : list(aud);
  claims["exp"] = number();
  if (head.charCodeAt(5) !== ABSENT) claims["nbf"] = number();
  if (head.charCodeAt(6) !== ABSENT) claims["iat"] = number();
  if (head.charCodeAt(7) !== ABSENT) claims["jti"] = string();
  if (head.charCodeAt(8) !== ABSENT) claims["tid"] = string();
  if (head.charCodeAt(9) !== ABSENT) claims["sid"] = string();
  claims["roles"] = list(head.charCodeAt(10));
  claims["perms"] = list(head.charCodeAt(11));
  claims["amr"] = list(head.charCodeAt(12));
  return claims as unknown as Claims;
}

/** The wasm key ring of `keys`, refusing an empty source. */
function keyRing(keys: KeySource | undefined) {
  if (typeof keys !== "object" || keys === null) {
    throw configError("keys", "required: { hs256: [{ kid, secret }] } and/or { jwks }");
  }
  const ring = new (backend().WasmKeyRing)();
  const { hs256 = [], jwks } = keys;
  if (!Array.isArray(hs256)) {
    throw configError("keys.hs256", "must be an array of { kid, secret }");
  }
  hs256.forEach((key: Hs256Key, index) => {
    const option = `keys.hs256[${index}]`;
    if (typeof key?.kid !== "string" || !(key.secret instanceof Uint8Array)) {
      throw configError(option, "must be { kid: string, secret: Uint8Array }");
    }
    if (key.secret.length > MAX_SECRET_BYTES) {
      throw configError(`${option}.secret`, `must be at most ${MAX_SECRET_BYTES} bytes`);
    }
    try {
      ring.addHs256(key.kid, key.secret);
    } catch (thrown) {
      throw configError(option, messageOf(thrown), thrown);
    }
  });
  if (jwks !== undefined) {
    let text: string;
    try {
      text = verificationJwks(jwks);
    } catch (thrown) {
      throw configError("keys.jwks", messageOf(thrown), thrown);
    }
    try {
      ring.addJwks(text);
    } catch (thrown) {
      throw configError("keys.jwks", messageOf(thrown), thrown);
    }
  }
  if (ring.size === 0) {
    throw configError("keys", "no key given: a verifier needs at least one key");
  }
  return ring;
}

/**
 * The JSON text of `jwks` for the core, without the keys that are not for verifying
 * signatures: a `use` other than `"sig"`, or `key_ops` without `"verify"` (RFC 7517 4.2, 4.3),
 * e.g. encryption keys published in the same document. A key with private material (`d`) is
 * kept, so the core refuses the whole document. Anything that is not a JWKS object is passed
 * on for the core to refuse with its own message.
 *
 * @throws {Error} for a document over {@link MAX_JWKS_CHARS} characters or not writable as
 *   JSON. @internal
 */
export function verificationJwks(jwks: JwksDocument | string | unknown): string {
  const text = typeof jwks === "string" ? jwks : JSON.stringify(jwks);
  if (typeof text !== "string") {
    throw new Error("must be a JWKS document or its JSON text");
  }
  if (text.length > MAX_JWKS_CHARS) {
    throw new Error(`the document is over ${MAX_JWKS_CHARS} characters of JSON`);
  }
  let document: unknown = jwks;
  if (typeof jwks === "string") {
    try {
      document = JSON.parse(jwks);
    } catch {
      return text;
    }
  }
  if (!isObject(document) || !Array.isArray(document["keys"])) {
    return text;
  }
  const keys: unknown[] = document["keys"];
  const kept = keys.filter(forVerifying);
  return kept.length === keys.length ? text : JSON.stringify({ ...document, keys: kept });
}

/** Whether a JWK may verify signatures by its `use` and `key_ops` (absent: any use). */
function forVerifying(jwk: unknown): boolean {
  if (!isObject(jwk) || "d" in jwk) {
    return true;
  }
  const use = jwk["use"];
  const ops = jwk["key_ops"];
  const sig = use === undefined || use === "sig";
  const verify = ops === undefined || (Array.isArray(ops) && ops.includes("verify"));
  return sig && verify;
}
