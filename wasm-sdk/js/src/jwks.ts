import { backend } from "./backend.js";
import { PortcullisError, configError, messageOf } from "./errors.js";
import { checkedFetch, getJson, isObject, timeoutMs } from "./http.js";
import type { Fetch } from "./http.js";
import { checkedClock, seconds } from "./time.js";
import type { Clock } from "./time.js";
import { Verifier, checkPolicy, verificationJwks } from "./verifier.js";
import type { Claims, Hs256Key, JwksDocument, Policy, VerifyOptions } from "./verifier.js";

/** The options of a {@link JwksCache}. */
export interface JwksCacheOptions {
  /** The JWKS, e.g. `https://auth.example.com/.well-known/jwks.json`. Required. */
  readonly url: string | URL;
  /**
   * Seconds a fetched document is used before it is fetched again. Default 300, the
   * issuer's `Cache-Control: max-age`.
   */
  readonly maxAge?: number;
  /**
   * The fewest seconds between the starts of two fetches, whatever asks for them: an expired
   * document ({@link JwksCache.get}) or a token naming an unknown `kid`
   * ({@link JwksCache.refresh}). A flood of tokens with made-up `kid`s, or of requests while
   * the issuer is down, cannot turn into a flood of fetches. Default 30.
   */
  readonly minRefreshInterval?: number;
  /**
   * Seconds past `maxAge` during which the last good document is still used while fetching a
   * new one fails (stale-while-error), so tokens signed with known keys keep verifying through
   * an outage of the JWKS endpoint. After `maxAge + maxStale` without a successful fetch,
   * `get` fails with the fetch's error. 0 turns this off. Default 86 400 (one day); at most
   * 604 800 (a week).
   */
  readonly maxStale?: number;
  /** The `fetch` to use. Default: the global one. */
  readonly fetch?: Fetch;
  /** Seconds before one request is abandoned (`fetch_failed`). Default 10. */
  readonly timeout?: number;
  /** The clock of `maxAge` and `minRefreshInterval`. Default `Date.now`. */
  readonly clock?: Clock;
}

const DEFAULT_MAX_AGE = 300;
const DEFAULT_MIN_REFRESH_INTERVAL = 30;
const DAY = 86_400;
const DEFAULT_MAX_STALE = DAY;
const MAX_STALE = 7 * DAY;

/**
 * The issuer's public keys, fetched from its JWKS URL and kept for `maxAge` seconds. A
 * document is only kept once the core accepts every key in it: a bad response never
 * replaces a good document. While fetching fails, the last good document is still served for
 * `maxStale` seconds past `maxAge`. Fetches start at least `minRefreshInterval` seconds apart,
 * and concurrent callers share the one in flight.
 */
export class JwksCache {
  readonly #url: string;
  readonly #maxAgeMs: number;
  readonly #maxStaleMs: number;
  readonly #minRefreshMs: number;
  readonly #fetch: Fetch;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  #document: JwksDocument | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #failure: PortcullisError | undefined;
  #loading: Promise<JwksDocument> | undefined;

  /** @throws {PortcullisError} `config_invalid` naming the refused option. */
  constructor(options: JwksCacheOptions) {
    if (typeof options !== "object" || options === null) {
      throw configError("options", "required: { url }");
    }
    try {
      this.#url = new URL(options.url).href;
    } catch (cause) {
      throw configError("url", "must be an absolute URL of a JWKS document", cause);
    }
    const range = { min: 0, max: DAY };
    this.#maxAgeMs = 1000 * seconds(options.maxAge, DEFAULT_MAX_AGE, "maxAge", range);
    this.#maxStaleMs =
      1000 * seconds(options.maxStale, DEFAULT_MAX_STALE, "maxStale", { min: 0, max: MAX_STALE });
    this.#minRefreshMs =
      1000 *
      seconds(
        options.minRefreshInterval,
        DEFAULT_MIN_REFRESH_INTERVAL,
        "minRefreshInterval",
        range,
      );
    this.#fetch = checkedFetch(options.fetch, "fetch");
    this.#timeoutMs = timeoutMs(options.timeout);
    this.#clock = checkedClock(options.clock, "clock");
  }

  /**
   * The current document: the cached one while younger than `maxAge`, else a newly fetched
   * one. When that fetch fails, or a fetch started less than `minRefreshInterval` ago, the
   * cached document is used while younger than `maxAge + maxStale`.
   *
   * @throws {PortcullisError} `fetch_failed` or `response_invalid` when there is no usable
   *   document and fetching one failed (now, or less than `minRefreshInterval` ago).
   */
  async get(): Promise<JwksDocument> {
    const now = this.#clock();
    const document = this.#document;
    if (document !== undefined && now - this.#fetchedAt < this.#maxAgeMs) {
      return document;
    }
    if (this.#loading === undefined && !this.#mayFetch(now)) {
      return this.#stale(now, this.#failure);
    }
    try {
      return await this.#load();
    } catch (error) {
      return this.#stale(this.#clock(), error);
    }
  }

  /**
   * Fetches the document again, unless a fetch started less than `minRefreshInterval` ago;
   * resolves to whether it fetched. Call it when a token names a `kid` the document lacks:
   * the issuer may have rotated its keys.
   *
   * @throws {PortcullisError} `fetch_failed` or `response_invalid`; the cached document stays.
   */
  async refresh(): Promise<boolean> {
    if (this.#loading === undefined && !this.#mayFetch(this.#clock())) {
      return false;
    }
    await this.#load();
    return true;
  }

  /** Whether a new fetch may start at `now`: none started within `minRefreshInterval`. */
  #mayFetch(now: number): boolean {
    return now - this.#attemptedAt >= this.#minRefreshMs;
  }

  /**
   * The cached document when no fetch may replace it: always after a successful last fetch
   * (`error` undefined), else while within `maxStale` past `maxAge` at `now`; else `error`.
   */
  #stale(now: number, error: unknown): JwksDocument {
    const document = this.#document;
    const age = now - this.#fetchedAt;
    if (
      document !== undefined &&
      (error === undefined || age < this.#maxAgeMs + this.#maxStaleMs)
    ) {
      return document;
    }
    if (error instanceof PortcullisError) {
      throw error;
    }
    // Only reachable when nothing was fetched yet and no fetch may start: never, as the
    // first fetch always may; kept so a failure is never a silent `undefined`.
    throw new PortcullisError("fetch_failed", `jwks: no document from ${this.#url}`, {
      cause: error,
    });
  }

  #load(): Promise<JwksDocument> {
    if (this.#loading === undefined) {
      this.#attemptedAt = this.#clock();
      this.#loading = this.#fetchDocument()
        .then(
          (document) => {
            this.#failure = undefined;
            return document;
          },
          (error: unknown) => {
            this.#failure = error instanceof PortcullisError ? error : undefined;
            throw error;
          },
        )
        .finally(() => {
          this.#loading = undefined;
        });
    }
    return this.#loading;
  }

  async #fetchDocument(): Promise<JwksDocument> {
    const body = await getJson(this.#fetch, this.#url, this.#timeoutMs, "jwks");
    if (!isObject(body) || !Array.isArray(body["keys"])) {
      throw new PortcullisError("response_invalid", `jwks: ${this.#url} has no "keys" array`);
    }
    let text: string;
    try {
      text = verificationJwks(body);
    } catch (cause) {
      throw new PortcullisError("response_invalid", `jwks: ${messageOf(cause)}`, { cause });
    }
    const ring = new (backend().WasmKeyRing)();
    try {
      ring.addJwks(text);
    } catch (cause) {
      throw new PortcullisError("response_invalid", `jwks: ${messageOf(cause)}`, { cause });
    } finally {
      ring.free();
    }
    const document = JSON.parse(text) as JwksDocument;
    this.#document = document;
    this.#fetchedAt = this.#clock();
    return document;
  }
}

/** The options of a {@link JwksVerifier}: a {@link Policy} and where the keys come from. */
export interface JwksVerifierOptions extends Policy {
  /** The issuer's public keys. Required. */
  readonly jwks: JwksCache;
  /** HS256 secrets to trust besides the JWKS keys, for a server that also holds them. */
  readonly hs256?: readonly Hs256Key[];
}

/**
 * A {@link Verifier} over a {@link JwksCache}: it verifies with the cached keys, and when a
 * token names a `kid` they lack it refreshes the cache (at most once per
 * `minRefreshInterval`) and tries once more. `verify` is asynchronous only because a
 * refresh may fetch.
 */
export class JwksVerifier {
  readonly #policy: Policy;
  readonly #hs256: readonly Hs256Key[];
  readonly #jwks: JwksCache;
  #document: JwksDocument | undefined;
  #verifier: Verifier | undefined;

  /** @throws {PortcullisError} `config_invalid` naming the refused option. */
  constructor(options: JwksVerifierOptions) {
    checkPolicy(options);
    const { jwks, hs256 = [], ...policy } = options;
    if (!(jwks instanceof JwksCache)) {
      throw configError("jwks", "required: a JwksCache");
    }
    if (!Array.isArray(hs256)) {
      throw configError("hs256", "must be an array of { kid, secret }");
    }
    if (hs256.length > 0) {
      // Refuse bad secrets now rather than at the first token.
      new Verifier({ ...policy, keys: { hs256 } });
    }
    this.#policy = policy;
    this.#hs256 = hs256;
    this.#jwks = jwks;
  }

  /**
   * Verifies `token` and returns its claims.
   *
   * @throws {PortcullisError} with a token code when the token is refused (`token_key_unknown`
   *   when its `kid` is still unknown after a refresh), or `fetch_failed` /
   *   `response_invalid` when the keys could not be fetched.
   */
  async verify(token: string, options?: VerifyOptions): Promise<Claims> {
    const verifier = this.#current(await this.#jwks.get());
    try {
      return verifyWith(verifier, token, options);
    } catch (error) {
      if (!(error instanceof PortcullisError && error.code === "token_key_unknown")) {
        throw error;
      }
      if (!(await this.#jwks.refresh())) {
        throw error;
      }
      return verifyWith(this.#current(await this.#jwks.get()), token, options);
    }
  }

  /** The verifier of `document`, rebuilt only when the cache holds a new document. */
  #current(document: JwksDocument): Verifier | undefined {
    if (document !== this.#document) {
      const hs256 = this.#hs256;
      this.#verifier =
        document.keys.length === 0 && hs256.length === 0
          ? undefined
          : new Verifier({ ...this.#policy, keys: { hs256, jwks: document } });
      this.#document = document;
    }
    return this.#verifier;
  }
}

/** `verifier.verify`, where no verifier means a key set without keys. */
function verifyWith(
  verifier: Verifier | undefined,
  token: string,
  options: VerifyOptions | undefined,
): Claims {
  if (verifier === undefined) {
    throw new PortcullisError("token_key_unknown", "unknown token key: the JWKS has no keys");
  }
  return verifier.verify(token, options);
}
