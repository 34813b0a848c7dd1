#!/usr/bin/env node
// What gating adds per request: latency seen by a client and CPU time in workerd, of the built
// edge worker against a pass-through worker (./passthrough.mjs) under the same Miniflare
// options, both in front of the same origin.
//
//   node edge/bench/latency.mjs [requests=2000]
//
// Variants, each `requests` sequential GETs over one keep-alive connection:
//   passthrough   the pass-through worker (with the same Authorization header as `eddsa`)
//   public        the edge, a public route: request rules, route rules, forward
//   eddsa         the edge, an authenticated route, an EdDSA token (keys from the JWKS)
//   hs256         the edge, an authenticated route, an HS256 token (secret in the config)
// After a warm-up, the variants take turns in 8 blocks each, so drift on a shared machine hits
// them alike. Latency: per request, from sending to the end of the response. CPU: utime +
// stime of each worker's workerd process (/proc/<pid>/stat) across its blocks, less its idle
// rate measured beforehand (the revocation replica's alarm polls the issuer every second
// whether requests come or not), divided by the requests.

import {
  NO_RATE_LIMIT,
  ROUTES,
  claimsOf,
  client,
  cpuMillis,
  machine,
  signHs256,
  signup,
  sleep,
  startIssuer,
  startOrigin,
  startWorker,
  stats,
  workerdPids,
} from './lib.mjs';

const REQUESTS = Number(process.argv[2] ?? 2000);
const BLOCKS = 8;
const WARMUP = 200;
const IDLE_MS = 5000;

const issuer = await startIssuer();
const origin = await startOrigin();
const user = await signup(issuer.url);
const tokens = await user.login();
const eddsa = tokens.access_token;
const hs256 = await signHs256(issuer.keys, claimsOf(eddsa));

const hsKeys = JSON.stringify([
  { kid: issuer.keys.hsKid, secret: issuer.keys.hsSecret.toString('base64url') },
]);
const vars = {
  PORTCULLIS_ORIGIN_URL: origin.url,
  PORTCULLIS_ISSUER_URL: issuer.url,
  PORTCULLIS_ROUTES: ROUTES,
  PORTCULLIS_HS256_KEYS: hsKeys,
};

/** Starts a worker and finds the workerd process that came with it. */
async function start(options) {
  const before = new Set(workerdPids());
  const worker = await startWorker(options);
  const pid = workerdPids().find((candidate) => !before.has(candidate));
  if (!pid) throw new Error('could not find the new workerd process');
  return { ...worker, pid };
}

const gated = await start({ vars, rateLimit: NO_RATE_LIMIT });
const passthrough = await start({
  vars,
  rateLimit: NO_RATE_LIMIT,
  scriptPath: new URL('./passthrough.mjs', import.meta.url).pathname,
});

const variants = [
  { name: 'passthrough', worker: passthrough, path: '/api/bench', token: eddsa },
  { name: 'public', worker: gated, path: '/public/bench' },
  { name: 'eddsa', worker: gated, path: '/api/bench', token: eddsa },
  { name: 'hs256', worker: gated, path: '/api/bench', token: hs256 },
];
for (const variant of variants) {
  variant.http = client();
  variant.url = `${variant.worker.url}${variant.path}`;
  variant.headers = variant.token ? { authorization: `Bearer ${variant.token}` } : {};
  variant.latencies = [];
  variant.cpu = 0;
  variant.wall = 0;
}

try {
  for (const variant of variants) {
    for (let i = 0; i < WARMUP; i += 1) {
      const status = await variant.http.get(variant.url, variant.headers);
      if (status !== 200) throw new Error(`${variant.name}: warm-up answered ${status}`);
    }
  }

  // Idle CPU rate of each workerd (ms of CPU per ms of wall time).
  const idleStart = [gated, passthrough].map((worker) => cpuMillis(worker.pid));
  await sleep(IDLE_MS);
  const idleRate = [gated, passthrough].map(
    (worker, i) => (cpuMillis(worker.pid) - idleStart[i]) / IDLE_MS,
  );
  gated.idleRate = idleRate[0];
  passthrough.idleRate = idleRate[1];

  const perBlock = Math.ceil(REQUESTS / BLOCKS);
  for (let block = 0; block < BLOCKS; block += 1) {
    for (const variant of variants) {
      const cpuBefore = cpuMillis(variant.worker.pid);
      const wallBefore = performance.now();
      for (let i = 0; i < perBlock; i += 1) {
        const started = performance.now();
        const status = await variant.http.get(variant.url, variant.headers);
        variant.latencies.push(performance.now() - started);
        if (status !== 200) throw new Error(`${variant.name}: answered ${status}`);
      }
      variant.wall += performance.now() - wallBefore;
      variant.cpu += cpuMillis(variant.worker.pid) - cpuBefore;
    }
  }

  const base = variants[0];
  const baseLatency = stats(base.latencies);
  const cpuPerRequest = (variant) =>
    (variant.cpu - variant.worker.idleRate * variant.wall) / variant.latencies.length;
  const rows = variants.map((variant) => {
    const latency = stats(variant.latencies);
    const cpu = cpuPerRequest(variant);
    return {
      variant: variant.name,
      requests: latency.n,
      p50_ms: +latency.p50.toFixed(3),
      p99_ms: +latency.p99.toFixed(3),
      mean_ms: +latency.mean.toFixed(3),
      added_p50_ms: +(latency.p50 - baseLatency.p50).toFixed(3),
      added_p99_ms: +(latency.p99 - baseLatency.p99).toFixed(3),
      cpu_per_request_us: +(cpu * 1000).toFixed(1),
      added_cpu_us: +((cpu - cpuPerRequest(base)) * 1000).toFixed(1),
    };
  });
  console.log(JSON.stringify({
    bench: 'edge latency and CPU',
    ...machine(),
    idle_cpu_ms_per_s: { gated: +(gated.idleRate * 1000).toFixed(2),
      passthrough: +(passthrough.idleRate * 1000).toFixed(2) },
    rows,
  }));
  console.table(rows);
} finally {
  for (const variant of variants) variant.http.close();
  await gated.mf.dispose();
  await passthrough.mf.dispose();
  origin.close();
  issuer.stop();
}
