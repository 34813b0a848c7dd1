// The built edge worker under workerd through Miniflare 4, with the options the repository's
// `wrangler.toml` gives it. Shared by `serve.mjs` (the launcher the Rust end-to-end tests use)
// and the benchmarks in `../bench/`, so both run exactly the same worker the same way.
//
// Why a hand-written mirror of wrangler.toml instead of reading it: wrangler's own reader costs
// about 4 s of import per start on this machine, and every test starts its own worker. The
// mirror below is checked against wrangler's reading of the file by `serve.mjs --check-wrangler`
// (run by the `edge` test target), and the shipped file itself is run by the `wrangler dev`
// smoke test, so a drift fails a test instead of hiding.

import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readdirSync, readFileSync, statSync } from 'node:fs';

import { Log, LogLevel, Miniflare } from 'miniflare';

/** `edge/`, the repository root, and the worker-build output the worker is loaded from. */
export const EDGE_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO_ROOT = path.dirname(EDGE_DIR.replace(/\/$/, ''));
export const BUILD_MAIN = path.join(EDGE_DIR, 'build', 'index.js');

/**
 * What `wrangler.toml` declares, as Miniflare options. Keep in step with the file;
 * `serve.mjs --check-wrangler` compares the two.
 */
export const WRANGLER_MIRROR = Object.freeze({
  main: 'edge/build/index.js',
  compatibilityDate: '2026-04-01',
  compatibilityFlags: [],
  vars: {
    PORTCULLIS_ORIGIN_URL: 'http://127.0.0.1:8000',
    PORTCULLIS_ISSUER_URL: 'http://127.0.0.1:8080',
    PORTCULLIS_AUDIENCE: 'portcullis',
    PORTCULLIS_LEEWAY_SECS: '30',
    PORTCULLIS_JWKS_MAX_AGE_SECS: '300',
    PORTCULLIS_REVOCATION_INTERVAL_MS: '1000',
    PORTCULLIS_REVOCATION_MAX_STALENESS_SECS: '30',
    PORTCULLIS_REVOCATION_STALE_MODE: 'closed',
    PORTCULLIS_MAX_HEADER_BYTES: '16384',
    PORTCULLIS_MAX_BODY_BYTES: '1048576',
    PORTCULLIS_ORIGIN_TIMEOUT_SECS: '30',
    PORTCULLIS_BLOCKED_METHODS: 'TRACE,CONNECT',
    PORTCULLIS_BLOCKED_PATHS: '[]',
    PORTCULLIS_ROUTES:
      '[\n' +
      '  {"path": "/healthz", "access": "public"},\n' +
      '  {"path": "/admin/**", "methods": ["POST", "PUT", "DELETE"], ' +
      '"permission": "users:write"},\n' +
      '  {"path": "/reports/*/download", "permission": "reports:read"},\n' +
      '  {"path": "/**", "access": "authenticated"}\n' +
      ']\n',
  },
  durableObjects: {
    REVOCATION_REPLICA: { className: 'RevocationReplica', useSQLite: true },
  },
  ratelimits: {
    RATE_LIMITER: { simple: { limit: 600, period: 60 } },
  },
});

/** workerd loads the `.wasm` next to `index.js` as a compiled module, as wrangler does. */
const MODULES_RULES = [{ type: 'CompiledWasm', include: ['**/*.wasm', '**/*.wasm?module'] }];

/** Miniflare's own messages go to stderr: stdout carries only the `ready` line. */
class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

/**
 * The Miniflare options for one worker.
 *
 * - `vars`: the `PORTCULLIS_*` variables and secrets (strings; anything else but `null` is
 *   JSON-encoded), laid over the `[vars]` of wrangler.toml as `wrangler dev --var` does; `null`
 *   removes a variable, so a test can see the worker without it (or with its built-in
 *   default);
 * - `rateLimit`: `{ limit, period }` replacing the `RATE_LIMITER` settings, so a test can reach
 *   the limit in a few requests and a benchmark never does;
 * - `scriptPath`: another worker (the benchmarks' pass-through worker), with the same runtime
 *   options and bindings.
 */
export function miniflareOptions({ vars = {}, rateLimit, scriptPath = BUILD_MAIN } = {}) {
  const bindings = { ...WRANGLER_MIRROR.vars };
  for (const [name, value] of Object.entries(vars)) {
    if (value === null) delete bindings[name];
    else bindings[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const ratelimits = {};
  for (const [name, { simple }] of Object.entries(WRANGLER_MIRROR.ratelimits)) {
    ratelimits[name] = { simple: { ...simple, ...(rateLimit ?? {}) } };
  }
  return {
    host: '127.0.0.1',
    port: 0,
    modules: true,
    scriptPath,
    // Module names are relative to this root: the worker's own directory, wherever the
    // launcher runs from (workerd refuses module paths that climb out of it with `..`).
    modulesRoot: path.dirname(scriptPath),
    modulesRules: MODULES_RULES,
    compatibilityDate: WRANGLER_MIRROR.compatibilityDate,
    compatibilityFlags: [...WRANGLER_MIRROR.compatibilityFlags],
    bindings,
    durableObjects: structuredClone(WRANGLER_MIRROR.durableObjects),
    ratelimits,
    // Offline: never fetch the `request.cf` object from Cloudflare.
    cf: false,
    log: new StderrLog(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
  };
}

/**
 * Starts a worker; resolves to `{ mf, url }` once it listens (`url` without trailing `/`).
 *
 * `wrangler dev` (the smoke test) and a developer's `bash scripts/build-edge` rewrite
 * `edge/build/` in place, file by file, while other tests may be starting workers from it. So
 * the worker starts only from a directory nobody wrote to for a moment, and starts again if
 * any file in it changed while Miniflare was reading it.
 */
export async function startWorker(options) {
  const dir = path.dirname(options?.scriptPath ?? BUILD_MAIN);
  for (let attempt = 1; ; attempt += 1) {
    const before = await quietSnapshot(dir);
    const mf = new Miniflare(miniflareOptions(options));
    let ready;
    try {
      ready = await mf.ready;
    } catch (error) {
      // A workerd that started but whose worker failed to load would outlive this process.
      await mf.dispose().catch(() => {});
      if (snapshot(dir) === before || attempt >= 5) throw error;
      continue;
    }
    if (snapshot(dir) === before) return { mf, url: ready.href.replace(/\/$/, '') };
    await mf.dispose();
    if (attempt >= 5) throw new Error(`${dir} kept changing while the worker started`);
  }
}

/** How long a build directory must have been left alone before a worker starts from it. */
const QUIET_MS = 500;

/** Names, sizes and modification times of the files in `dir`, as one comparable string. */
function snapshot(dir) {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const stat = statSync(path.join(dir, name));
      return `${name}:${stat.size}:${stat.mtimeMs}`;
    })
    .join('|');
}

/** Waits until no file in `dir` changed for QUIET_MS (at most a minute); its snapshot. */
async function quietSnapshot(dir) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const newest = Math.max(
      ...readdirSync(dir).map((name) => statSync(path.join(dir, name)).mtimeMs),
    );
    const quietFor = Date.now() - newest;
    if (quietFor >= QUIET_MS || Date.now() > deadline) return snapshot(dir);
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS - quietFor));
  }
}

/**
 * The pids of the `workerd` processes this Node process started (Miniflare runs one per
 * instance), for the benchmarks' CPU accounting.
 */
export function workerdPids() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (comm === 'workerd' && ppid === process.pid) pids.push(Number(entry));
  }
  return pids;
}
