import { PortcullisError } from "./errors.js";
import { seconds } from "./time.js";

/** Seconds a request, body included, may take unless the `timeout` option says otherwise. */
const DEFAULT_TIMEOUT = 10;

/**
 * The `timeout` option of the fetching helpers, in milliseconds: from 1 ms to 10 minutes,
 * default 10 s.
 */
export function timeoutMs(timeout: number | undefined): number {
  return 1000 * seconds(timeout, DEFAULT_TIMEOUT, "timeout", { min: 0.001, max: 600 });
}

/**
 * The part of `fetch` the SDK uses. The global `fetch` of Node ≥ 20, browsers and workers
 * fits; inject another to add headers, route through a proxy, or test without a network.
 */
export type Fetch = (url: string, init: FetchInit) => Promise<FetchResponse>;

/** What the SDK passes to {@link Fetch}. */
export interface FetchInit {
  readonly method: "GET";
  readonly headers: { readonly accept: "application/json" };
  /** Aborts the request once the helper's `timeout` has passed. */
  readonly signal: AbortSignal;
}

/** What the SDK reads of a response. */
export interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  json(): Promise<unknown>;
}

/** `fetch`, or the global one when none is given; refused when neither exists. */
export function checkedFetch(fetch: Fetch | undefined, option: string): Fetch {
  const chosen: unknown = fetch ?? globalThis.fetch;
  if (typeof chosen !== "function") {
    throw new PortcullisError("config_invalid", `${option}: no fetch given and none is global`);
  }
  return chosen as Fetch;
}

/**
 * `GET url` as JSON, with the SDK's error codes. `what` names the resource in messages.
 *
 * The timeout is enforced here, around the request and the reading of the body, so it holds
 * for an injected `fetch` that ignores the signal and for a body that stalls: both are
 * `fetch_failed`, like every timeout.
 */
export async function getJson(
  fetch: Fetch,
  url: string,
  timeoutMs: number,
  what: string,
): Promise<unknown> {
  const controller = new AbortController();
  const request = `${what}: GET ${url}`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new PortcullisError(
        "fetch_failed",
        `${request} timed out after ${timeoutMs / 1000} s`,
      );
      reject(error);
      controller.abort(error);
    }, timeoutMs);
  });
  const init: FetchInit = {
    method: "GET",
    headers: { accept: "application/json" },
    signal: controller.signal,
  };
  try {
    let response: unknown;
    try {
      response = await Promise.race([fetch(url, init), timedOut]);
    } catch (cause) {
      throw cause instanceof PortcullisError
        ? cause
        : new PortcullisError("fetch_failed", `${request} failed`, { cause });
    }
    const checked = checkedResponse(response, request);
    if (!checked.ok) {
      const status = checked.status;
      throw new PortcullisError("fetch_failed", `${request} answered ${status}`, { status });
    }
    try {
      return await Promise.race([checked.json(), timedOut]);
    } catch (cause) {
      throw cause instanceof PortcullisError
        ? cause
        : new PortcullisError("response_invalid", `${request} sent no JSON`, { cause });
    }
  } finally {
    clearTimeout(timer);
  }
}

/** `response` if it has what the SDK reads of one; a `fetch` that answers otherwise is a bug. */
function checkedResponse(response: unknown, request: string): FetchResponse {
  if (
    typeof response !== "object" ||
    response === null ||
    !("ok" in response) ||
    typeof response.ok !== "boolean" ||
    !("status" in response) ||
    typeof response.status !== "number" ||
    !("json" in response) ||
    typeof response.json !== "function"
  ) {
    throw new PortcullisError(
      "config_invalid",
      `fetch: resolved to ${response === null ? "null" : typeof response}, not a response with ok, status and json() (${request})`,
    );
  }
  return response as FetchResponse;
}

/** Whether `value` is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
