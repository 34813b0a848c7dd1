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

/** `at` in whole unix seconds, the unit of `exp`, `nbf` and `iat`. */
export function unixSeconds(at: Instant, option: string): number {
  return Math.floor(millis(at, option) / 1000);
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
