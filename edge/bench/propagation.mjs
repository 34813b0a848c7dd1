#!/usr/bin/env node
// How long a logout at the issuer takes to be refused at the edge (0004, "Propagation bound":
// target p99 <= 1 s with the default 1 s interval).
//
//   node edge/bench/propagation.mjs [runs=20]
//
// One issuer, one origin, one worker (as the end-to-end tests run it). Each run logs a user in
// (a new session), checks the edge passes the token, then logs out at the issuer and polls the
// edge with the old token every 10 ms until it answers 401 `token_revoked`. The time counts
// from just before the logout request is sent (a conservative start: the revocation is
// recorded later than that) to the refusal's arrival. Runs start at random offsets within an
// interval so they do not fall into step with the worker's refresh alarm. Set
// PORTCULLIS_REVOCATION_INTERVAL_MS to measure another interval.

import {
  NO_RATE_LIMIT,
  ROUTES,
  client,
  fmt,
  machine,
  signup,
  sleep,
  startIssuer,
  startOrigin,
  startWorker,
  stats,
} from './lib.mjs';

const RUNS = Number(process.argv[2] ?? 20);
const POLL_MS = 10;
const GIVE_UP_MS = 30_000;

const issuer = await startIssuer();
const origin = await startOrigin();
const interval = process.env.PORTCULLIS_REVOCATION_INTERVAL_MS;
const vars = {
  PORTCULLIS_ORIGIN_URL: origin.url,
  PORTCULLIS_ISSUER_URL: issuer.url,
  PORTCULLIS_ROUTES: ROUTES,
  ...(interval ? { PORTCULLIS_REVOCATION_INTERVAL_MS: interval } : {}),
};
const { mf, url: edge } = await startWorker({ vars, rateLimit: NO_RATE_LIMIT });
const http = client();
const intervalMs = Number(interval ?? 1000);

try {
  const user = await signup(issuer.url);
  const samples = [];
  for (let run = 1; run <= RUNS; run += 1) {
    const tokens = await user.login();
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    const before = await http.get(`${edge}/api/propagation`, auth);
    if (before !== 200) throw new Error(`run ${run}: the fresh token got ${before}`);
    await sleep(Math.random() * intervalMs);

    const started = performance.now();
    const logout = await fetch(`${issuer.url}/v1/auth/logout`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    if (logout.status !== 204) throw new Error(`run ${run}: logout answered ${logout.status}`);
    for (;;) {
      const status = await http.get(`${edge}/api/propagation`, auth);
      if (status === 401) break;
      if (status !== 200) throw new Error(`run ${run}: the edge answered ${status}`);
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`run ${run}: never refused`);
      await sleep(POLL_MS);
    }
    const took = performance.now() - started;
    samples.push(took);
    process.stderr.write(`run ${String(run).padStart(2)}: ${fmt(took)}\n`);
  }

  const result = stats(samples);
  console.log(JSON.stringify({ bench: 'edge propagation', interval_ms: intervalMs,
    poll_ms: POLL_MS, ...machine(), ...result, samples: samples.map((x) => +x.toFixed(1)) }));
  console.log(`propagation over ${result.n} runs (interval ${intervalMs} ms, polled every ` +
    `${POLL_MS} ms): median ${fmt(result.p50)}, p99 ${fmt(result.p99)}, ` +
    `min ${fmt(result.min)}, max ${fmt(result.max)}`);
} finally {
  http.close();
  await mf.dispose();
  origin.close();
  issuer.stop();
}
