import { configError } from "./errors.js";

/**
 * The current time in milliseconds since 1970, as `Date.now` gives it. Inject one to test
 * expiry, leeway and refresh intervals without waiting.
 */
export type Clock = () => number;

/** A point in time: a `Date`, or milliseconds since 1970 like `Date.now()`. */
export type Instant = Date | number;

/** The milliseconds since 1970 of `at`, refused unless a finite, non-negative time. */
export function millis(at: Instant, option: string): number {
  const ms = typeof at === "number" ? at : at instanceof Date ? at.getTime() : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) {
    throw configError(option, `must be a Date or milliseconds since 1970, got ${String(at)}`);
  }
  return ms;
}

/** The latest time the core takes, in unix seconds: 2^53 − 1, the largest exact integer. */
const MAX_UNIX_SECONDS = Number.MAX_SAFE_INTEGER;

/**
 * `at` in whole unix seconds, the unit of `exp`, `nbf` and `iat`: refused unless from 0 to
 * 2^53 − 1 seconds, the times the core takes, so no time is silently ignored.
 */
export function unixSeconds(at: Instant, option: string): number {
  const unix = Math.floor(millis(at, option) / 1000);
  if (unix > MAX_UNIX_SECONDS) {
    throw configError(option, `must be at most 2^53 - 1 seconds since 1970, got ${String(at)}`);
  }
  return unix;
}

/** `clock`, or `Date.now` when none is given, refused unless a function. */
export function checkedClock(clock: Clock | undefined, option: string): Clock {
  if (clock === undefined) {
    return Date.now;
  }
  if (typeof clock !== "function") {
    throw configError(option, "must be a function returning milliseconds since 1970");
  }
  return clock;
}

/** A duration option in seconds: a finite number from `min` to `max`, else `defaultValue`. */
export function seconds(
  value: number | undefined,
  defaultValue: number,
  option: string,
  range: { readonly min: number; readonly max: number },
): number {
  if (value === undefined) {
    return defaultValue;
  }
  if (typeof value !== "number" || !(value >= range.min && value <= range.max)) {
    throw configError(option, `must be a number of seconds from ${range.min} to ${range.max}`);
  }
  return value;
}
