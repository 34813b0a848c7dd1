import { PortcullisError } from "./errors.js";

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

/** `GET url` as JSON, with the SDK's error codes. `what` names the resource in messages. */
export async function getJson(
  fetch: Fetch,
  url: string,
  timeoutMs: number,
  what: string,
): Promise<unknown> {
  const init: FetchInit = {
    method: "GET",
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(timeoutMs),
  };
  let response: FetchResponse;
  try {
    response = await fetch(url, init);
  } catch (cause) {
    throw new PortcullisError("fetch_failed", `${what}: GET ${url} failed`, { cause });
  }
  if (!response.ok) {
    const status = response.status;
    throw new PortcullisError("fetch_failed", `${what}: GET ${url} answered ${status}`, {
      status,
    });
  }
  try {
    return await response.json();
  } catch (cause) {
    throw new PortcullisError("response_invalid", `${what}: GET ${url} sent no JSON`, { cause });
  }
}

/** Whether `value` is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
