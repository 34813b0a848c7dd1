import { backend } from "./backend.js";

/**
 * Granted permissions: verified claims (their `perms` are used) or a list of permission
 * strings, e.g. ones a role map expanded.
 */
export type Granted = { readonly perms: readonly string[] } | readonly string[];

/**
 * The granted permission strings, as the array of separate strings the core reads. A list
 * is never joined into one string: a malformed grant such as `"x\n*"` must stay one
 * malformed grant, which grants nothing. Non-strings grant nothing either.
 */
function grants(granted: Granted): string[] {
  const list: readonly unknown[] = Array.isArray(granted)
    ? granted
    : ((granted as { readonly perms: readonly unknown[] } | null)?.perms ?? []);
  return Array.isArray(list) ? list.filter((one): one is string => typeof one === "string") : [];
}

function strings(required: readonly string[]): string[] | undefined {
  return Array.isArray(required) && required.every((one) => typeof one === "string")
    ? [...required]
    : undefined;
}

/**
 * Whether `granted` satisfies `required`, by the core's rules: a permission is `*` or
 * `resource:action`, each segment `*` or `[a-z0-9_.-]+`. A granted `*` segment covers any
 * segment; a required `*` is only covered by a granted `*` in the same place, so `users:*`
 * is not satisfied by `users:read`. A malformed grant grants nothing; a malformed
 * requirement is never satisfied.
 *
 * ```ts
 * hasPermission(claims, "billing:refund"); // true with perms ["billing:*"]
 * ```
 */
export function hasPermission(granted: Granted, required: string): boolean {
  return typeof required === "string" && backend().hasPermission(grants(granted), required);
}

/** Whether `granted` satisfies every one of `required`; an empty `required` is satisfied. */
export function hasAll(granted: Granted, required: readonly string[]): boolean {
  const list = strings(required);
  return list !== undefined && backend().hasAll(grants(granted), list);
}

/**
 * Whether `granted` satisfies at least one of `required`; an empty `required` never is
 * (fail closed).
 */
export function hasAny(granted: Granted, required: readonly string[]): boolean {
  const list = strings(required);
  return list !== undefined && backend().hasAny(grants(granted), list);
}
