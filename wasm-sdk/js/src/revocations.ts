import { backend } from "./backend.js";
import { PortcullisError, configError, messageOf } from "./errors.js";
import { checkedFetch, getJson, isObject, timeoutMs } from "./http.js";
import type { Fetch } from "./http.js";
import { checkedClock, seconds, unixSeconds } from "./time.js";
import type { Clock, Instant } from "./time.js";

type WasmRevocationList = InstanceType<ReturnType<typeof backend>["WasmRevocationList"]>;

/** One entry of the issuer's revocation feed, `GET /v1/revocations`. */
export interface RevocationEntry {
  /** The feed position, a decimal string; later entries have larger cursors. */
  readonly cursor: string;
  /**
   * What the entry revokes: the token whose `jti` is `value`, every token of the session
   * `sid` = `value`, or every token of the subject `sub` = `value` issued before
   * `issued_before`.
   */
  readonly kind: "jti" | "session" | "subject";
  /** The revoked `jti`, `sid` or `sub`. */
  readonly value: string;
  /** The tenant of the revoked identifier (informational: entries match on `value`). */
  readonly tenant_id: string;
  /** For `subject`: tokens with an `iat` before this (unix seconds) are revoked. */
  readonly issued_before?: number;
  /** Unix seconds after which no token the entry matches is still valid. */
  readonly expires_at: number;
}

/** One page of the feed, as the issuer sends it. */
export interface RevocationPage {
  readonly entries: readonly RevocationEntry[];
  /** The cursor to ask for next, `since=`: the last entry's, or `since` on an empty page. */
  readonly next_cursor: string;
  /** Whether more entries follow at once. */
  readonly has_more: boolean;
}

/** The options of a {@link RevocationList}. */
export interface RevocationListOptions {
  /** The clock `prune()` reads when not given a time. Default `Date.now`. */
  readonly clock?: Clock;
}

const sets = new WeakMap<RevocationList, WasmRevocationList>();

/**
 * The wasm set behind `list`, for a verifier to consult; `option` names the option that
 * should have held a {@link RevocationList}. @internal
 */
export function revocationSet(list: RevocationList, option = "list"): WasmRevocationList {
  const set = typeof list === "object" && list !== null ? sets.get(list) : undefined;
  if (set === undefined) {
    // A RevocationList of the package's other copy (its CommonJS build next to its ES module)
    // holds a set of that copy's backend, which this copy must not hand to its own.
    throw configError(
      option,
      "must be a RevocationList from the same copy of the SDK (ES module and CommonJS copies do not mix)",
    );
  }
  return set;
}

/**
 * The revocations a verifier consults, filled from the issuer's feed (by a
 * {@link RevocationFeed}, or by hand from wherever the entries were kept).
 *
 * Applying is idempotent and order-independent, so replaying a page is harmless.
 */
export class RevocationList {
  readonly #clock: Clock;

  /** @throws {PortcullisError} `config_invalid` naming the refused option. */
  constructor(options: RevocationListOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw configError("options", "must be an object, { clock } or {}");
    }
    this.#clock = checkedClock(options.clock, "clock");
    sets.set(this, new (backend().WasmRevocationList)());
  }

  /**
   * Applies feed entries, all or none, and returns how many there were.
   *
   * @throws {PortcullisError} `revocation_invalid` if any entry is not of the feed's shape;
   *   then none is applied.
   */
  apply(entries: readonly RevocationEntry[]): number {
    if (!Array.isArray(entries)) {
      throw new PortcullisError("revocation_invalid", "entries must be an array");
    }
    let text: string;
    try {
      text = JSON.stringify(entries);
    } catch (cause) {
      throw new PortcullisError("revocation_invalid", "entries cannot be written as JSON", {
        cause,
      });
    }
    try {
      return revocationSet(this).apply(text);
    } catch (cause) {
      throw new PortcullisError("revocation_invalid", messageOf(cause), { cause });
    }
  }

  /** The largest cursor applied, to resume the feed from; `undefined` before any entry. */
  get cursor(): string | undefined {
    return revocationSet(this).cursor;
  }

  /** The number of distinct revoked identifiers. */
  get size(): number {
    return revocationSet(this).size;
  }

  /**
   * Drops the entries that can no longer match a valid token at `now` (default: the
   * clock), keeping each for 60 s past its `expires_at` (the largest leeway).
   */
  prune(now?: Instant): void {
    const at = now === undefined ? unixSeconds(this.#clock(), "clock()") : unixSeconds(now, "now");
    revocationSet(this).prune(at);
  }
}

/** The options of a {@link RevocationFeed}. */
export interface RevocationFeedOptions {
  /** The feed, e.g. `https://auth.example.com/v1/revocations`. Required. */
  readonly url: string | URL;
  /** The list the entries go to. Required. */
  readonly list: RevocationList;
  /** Entries per page, 1–1000; default: the issuer's (500). */
  readonly limit?: number;
  /** The `fetch` to use. Default: the global one. */
  readonly fetch?: Fetch;
  /** Seconds before one request is abandoned (`fetch_failed`). Default 10. */
  readonly timeout?: number;
  /** The clock of `syncedAt` and of pruning after a poll. Default `Date.now`. */
  readonly clock?: Clock;
}

/** The options of {@link RevocationFeed.start}. */
export interface PollingOptions {
  /** Seconds between the end of one poll and the start of the next. Default 5. */
  readonly interval?: number;
  /** Told about every failed poll; polling goes on. Required: a silent feed is a hole. */
  readonly onError: (error: unknown) => void;
}

const MAX_LIMIT = 1000;
const DEFAULT_INTERVAL = 5;
const DECIMAL = /^[0-9]+$/;

/**
 * Keeps a {@link RevocationList} in step with the issuer's feed: each poll asks for the
 * entries after the cursor it holds (`?since=`), follows `has_more` page by page, and
 * applies every page before moving the cursor past it.
 */
export class RevocationFeed {
  readonly #url: URL;
  readonly #list: RevocationList;
  readonly #limit: number | undefined;
  readonly #fetch: Fetch;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  #cursor: string | undefined;
  #syncedAt: number | undefined;
  #polling: Promise<number> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;

  /** @throws {PortcullisError} `config_invalid` naming the refused option. */
  constructor(options: RevocationFeedOptions) {
    if (typeof options !== "object" || options === null) {
      throw configError("options", "required: { url, list }");
    }
    try {
      this.#url = new URL(options.url);
    } catch (cause) {
      throw configError("url", "must be an absolute URL of the revocation feed", cause);
    }
    revocationSet(options.list);
    const limit = options.limit;
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT)) {
      throw configError("limit", `must be a whole number from 1 to ${MAX_LIMIT}`);
    }
    this.#list = options.list;
    this.#limit = limit;
    this.#fetch = checkedFetch(options.fetch, "fetch");
    this.#timeoutMs = timeoutMs(options.timeout);
    this.#clock = checkedClock(options.clock, "clock");
    this.#cursor = options.list.cursor;
  }

  /** The cursor the next poll resumes from; `undefined` until the first page. */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  /**
   * When the last poll that reached the end of the feed finished (milliseconds since 1970,
   * by the feed's clock). Compare it with the clock to notice a feed that stopped updating.
   */
  get syncedAt(): number | undefined {
    return this.#syncedAt;
  }

  /**
   * Fetches and applies every entry after the cursor, then prunes the list. Concurrent
   * calls share one run. Resolves to the number of entries applied.
   *
   * @throws {PortcullisError} `fetch_failed` or `response_invalid`; the pages applied
   *   before the failure stay applied and the cursor stays after them.
   */
  poll(): Promise<number> {
    this.#polling ??= this.#pollPages().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Polls now and then every `interval` seconds until {@link stop}. */
  start(options: PollingOptions): void {
    if (typeof options?.onError !== "function") {
      throw configError("onError", "required: a function told about failed polls");
    }
    if (this.#running) {
      throw configError("start", "the feed is already polling");
    }
    const intervalMs =
      1000 * seconds(options.interval, DEFAULT_INTERVAL, "interval", { min: 0.001, max: 86_400 });
    const onError = options.onError;
    this.#running = true;
    const tick = (): void => {
      this.poll()
        .catch(onError)
        .finally(() => {
          if (this.#running) {
            this.#timer = setTimeout(tick, intervalMs);
            unref(this.#timer);
          }
        });
    };
    tick();
  }

  /** Stops the polling {@link start} began; a poll in flight still completes. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  async #pollPages(): Promise<number> {
    let applied = 0;
    for (;;) {
      const url = new URL(this.#url);
      if (this.#cursor !== undefined) {
        url.searchParams.set("since", this.#cursor);
      }
      if (this.#limit !== undefined) {
        url.searchParams.set("limit", String(this.#limit));
      }
      const page = checkPage(await getJson(this.#fetch, url.href, this.#timeoutMs, "feed"));
      if (this.#cursor !== undefined && BigInt(page.next_cursor) < BigInt(this.#cursor)) {
        throw new PortcullisError(
          "response_invalid",
          `feed: next_cursor ${page.next_cursor} is before the cursor asked for, ${this.#cursor}`,
        );
      }
      try {
        applied += this.#list.apply(page.entries);
      } catch (cause) {
        throw new PortcullisError("response_invalid", `feed: ${messageOf(cause)}`, { cause });
      }
      const advanced = page.next_cursor !== this.#cursor;
      this.#cursor = page.next_cursor;
      if (!page.has_more) {
        break;
      }
      if (!advanced) {
        throw new PortcullisError("response_invalid", "feed: has_more without a new cursor");
      }
    }
    const now = this.#clock();
    this.#list.prune(now);
    this.#syncedAt = now;
    return applied;
  }
}

/** `body` as a feed page, or `response_invalid`. The entries are checked by the list. */
function checkPage(body: unknown): RevocationPage {
  if (
    !isObject(body) ||
    !Array.isArray(body["entries"]) ||
    typeof body["next_cursor"] !== "string" ||
    !DECIMAL.test(body["next_cursor"]) ||
    typeof body["has_more"] !== "boolean"
  ) {
    throw new PortcullisError(
      "response_invalid",
      "feed: expected { entries: [...], next_cursor: decimal string, has_more: boolean }",
    );
  }
  return body as unknown as RevocationPage;
}

/** Lets Node exit while only a polling timer is pending; other runtimes have no `unref`. */
function unref(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) {
    const release: unknown = timer.unref;
    if (typeof release === "function") {
      release.call(timer);
    }
  }
}
