// What the edge benchmarks share: a real issuer process, a minimal origin, the worker under
// Miniflare (through ../test/worker.mjs, the same options the end-to-end tests use), a
// keep-alive HTTP client, and the statistics. Nothing here is timed itself.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT } from '../test/worker.mjs';

import { startWorker as startAnyWorker } from '../test/worker.mjs';

export { workerdPids } from '../test/worker.mjs';

/**
 * Starts a worker as ../test/worker.mjs does; the edge's build unless `scriptPath` says
 * otherwise or PORTCULLIS_TEST_EDGE_SCRIPT names another script (as in the Rust suite).
 */
export function startWorker(options) {
  const scriptPath = options.scriptPath ?? process.env.PORTCULLIS_TEST_EDGE_SCRIPT;
  return startAnyWorker({ ...options, ...(scriptPath ? { scriptPath } : {}) });
}

/** The route rules of the benchmarks: one public and one authenticated prefix. */
export const ROUTES = JSON.stringify([
  { path: '/public/**', access: 'public' },
  { path: '/api/**', access: 'authenticated' },
]);

/** A rate limit no benchmark reaches (wrangler.toml's production value would). */
export const NO_RATE_LIMIT = { limit: 1_000_000_000, period: 60 };

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

/**
 * Starts the issuer binary (`ISSUER_BIN`, else target/release/issuer, else target/debug/issuer)
 * on a fresh embedded data directory, with an EdDSA signing key (published in its JWKS) and an
 * HS256 key; resolves once `/readyz` answers 200.
 */
export async function startIssuer() {
  const candidates = [
    process.env.ISSUER_BIN,
    path.join(REPO_ROOT, 'target/release/issuer'),
    path.join(REPO_ROOT, 'target/debug/issuer'),
  ].filter(Boolean);
  const bin = candidates.find((candidate) => {
    try {
      return readFileSync(candidate).length > 0;
    } catch {
      return false;
    }
  });
  if (!bin) throw new Error('no issuer binary: run `cargo build -p issuer` or set ISSUER_BIN');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'pc_edge_bench_'));
  const keys = {
    edKid: `ed-${randomUUID().slice(0, 8)}`,
    hsKid: `hs-${randomUUID().slice(0, 8)}`,
    hsSecret: randomBytes(32),
  };
  writeFileSync(
    path.join(dir, 'config.toml'),
    `[[token.keys]]\nkid = "${keys.edKid}"\nalg = "EdDSA"\n` +
      `private_key = "${b64url(randomBytes(32))}"\nactive = true\n\n` +
      `[[token.keys]]\nkid = "${keys.hsKid}"\nalg = "HS256"\nsecret = "${b64url(keys.hsSecret)}"\n`,
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PORTCULLIS_')),
  );
  const child = spawn(bin, ['serve'], {
    cwd: dir,
    env: {
      ...env,
      PORTCULLIS_LISTEN: '127.0.0.1:0',
      PORTCULLIS_DATA_DIR: path.join(dir, 'data'),
      PORTCULLIS_CONFIG: path.join(dir, 'config.toml'),
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/Portcullis issuer listening on (http:\/\/\S+)/);
      if (match) resolve(match[1].replace(/\/$/, ''));
    });
    child.on('exit', (code) => reject(new Error(`the issuer exited with ${code}`)));
  });
  child.stdout.resume();
  for (let i = 0; ; i += 1) {
    const ready = await fetch(`${url}/readyz`).catch(() => null);
    if (ready?.status === 200) break;
    if (i > 600) throw new Error('the issuer is not ready after 30 s');
    await sleep(50);
  }
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  return { url, keys, stop };
}

/** Registers a fresh user and logs in: `{ access_token, refresh_token, … }`. */
export async function signup(issuerUrl) {
  const email = `bench-${randomUUID()}@example.com`;
  const password = 'correct horse battery staple';
  const post = (p, body) =>
    fetch(`${issuerUrl}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const registered = await post('/v1/auth/register', { email, password });
  if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
  return { email, password, login: () => login(issuerUrl, email, password) };
}

export async function login(issuerUrl, email, password) {
  const response = await fetch(`${issuerUrl}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (response.status !== 200) throw new Error(`login: ${response.status}`);
  return response.json();
}

/** An HS256 token with `claims`, signed with the issuer's HS256 key (which the edge knows). */
export async function signHs256(keys, claims) {
  const { createHmac } = await import('node:crypto');
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: keys.hsKid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createHmac('sha256', keys.hsSecret).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${b64url(signature)}`;
}

/** The claims of a compact JWS, unverified. */
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/** An origin that answers every request with a small JSON body, as fast as Node can. */
export async function startOrigin() {
  const body = Buffer.from('{"ok":true}');
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': body.length,
      });
      response.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/** One keep-alive connection per base URL; `get(url, headers)` resolves to the status. */
export function client() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get(url, headers = {}) {
      return new Promise((resolve, reject) => {
        const request = http.get(url, { agent, headers }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode));
        });
        request.on('error', reject);
      });
    },
    close: () => agent.destroy(),
  };
}

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU time (user + system, all threads) a process has used so far, in milliseconds. */
export function cpuMillis(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // utime and stime are fields 14 and 15; `fields` starts at field 3 (after the command).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** Median, p99 (nearest rank), mean, min and max of `samples`. */
export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  return {
    n: sorted.length,
    p50: rank(0.5),
    p99: rank(0.99),
    mean,
    min: sorted[0],
    max: sorted.at(-1),
  };
}

/** Where and when a benchmark ran, for BENCHMARKS.md. */
export function machine() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu: `${cpus[0]?.model ?? 'unknown'} x${cpus.length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const fmt = (ms) => `${ms.toFixed(2)} ms`;
