#!/usr/bin/env node
// Starts the built edge worker (`edge/build/`) under workerd through Miniflare 4, as
// wrangler.toml configures it, for the end-to-end tests in `tests/edge/` and for manual runs.
//
//   node edge/test/serve.mjs [VARS] [--rate-limit=N] [--rate-period=10|60] [--script=PATH]
//   node edge/test/serve.mjs --check-wrangler
//
// VARS is a JSON object of `PORTCULLIS_*` variables and secrets, inline or `@file`; they are
// laid over every `PORTCULLIS_*` variable of this process's environment, and those over the
// `[vars]` of wrangler.toml; a `null` value removes the variable. `--rate-limit` and
// `--rate-period` replace the RATE_LIMITER settings; `--script` runs another worker with the
// same options (the benchmarks' pass-through worker).
//
// Prints exactly one line to stdout, `ready <url>`, once the worker listens on 127.0.0.1 (port
// chosen by the system); everything else goes to stderr. It stops the worker and exits when its
// stdin closes, so a test that ends in any way (its pipe closes with it) leaves no workerd
// behind; keep stdin open for a manual run (a terminal does, `< /dev/null` does not).
//
// `--check-wrangler` asks wrangler itself how it reads the repository's wrangler.toml and
// exits 1, naming each difference, when the mirror in `worker.mjs` says otherwise.

import { readFileSync } from 'node:fs';
import path from 'node:path';

import { BUILD_MAIN, REPO_ROOT, WRANGLER_MIRROR, startWorker } from './worker.mjs';

const PREFIX = 'PORTCULLIS_';

function fail(message) {
  process.stderr.write(`serve.mjs: ${message}\n`);
  process.exit(2);
}

/** The command line: `{ vars, rateLimit, scriptPath, checkWrangler }`. */
function parseArguments(argv) {
  const vars = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith(PREFIX)) vars[name] = value;
  }
  const rateLimit = {};
  let scriptPath;
  let checkWrangler = false;
  for (const argument of argv) {
    const [flag, value] = argument.split(/=(.*)/s, 2);
    if (flag === '--check-wrangler') {
      checkWrangler = true;
    } else if (flag === '--rate-limit' && /^\d+$/.test(value ?? '')) {
      rateLimit.limit = Number(value);
    } else if (flag === '--rate-period' && (value === '10' || value === '60')) {
      rateLimit.period = Number(value);
    } else if (flag === '--script' && value) {
      scriptPath = path.resolve(value);
    } else if (argument.startsWith('{') || argument.startsWith('@')) {
      Object.assign(vars, parseVars(argument));
    } else {
      fail(`unknown argument ${JSON.stringify(argument.slice(0, 40))}`);
    }
  }
  return { vars, rateLimit, scriptPath, checkWrangler };
}

/** A JSON object of `PORTCULLIS_*` names; other names are refused, as a typo would be. */
function parseVars(argument) {
  const text = argument.startsWith('@') ? readFileSync(argument.slice(1), 'utf8') : argument;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    fail(`the variables argument is not JSON: ${error.message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    fail('the variables argument must be a JSON object');
  }
  for (const name of Object.keys(parsed)) {
    if (!name.startsWith(PREFIX)) fail(`variable ${JSON.stringify(name)} lacks ${PREFIX}`);
  }
  return parsed;
}

/** Compares the mirror with wrangler's own reading of wrangler.toml; the differences. */
async function wranglerDifferences() {
  const wrangler = await import('wrangler');
  const config = path.join(REPO_ROOT, 'wrangler.toml');
  const { workerOptions, main } = wrangler.unstable_getMiniflareWorkerOptions(config);
  const differences = [];
  const same = (what, mirrored, actual) => {
    if (JSON.stringify(mirrored) !== JSON.stringify(actual)) {
      differences.push(`${what}: mirror ${JSON.stringify(mirrored)}, wrangler.toml ` +
        JSON.stringify(actual));
    }
  };

  same('main', BUILD_MAIN, main && path.resolve(REPO_ROOT, main));
  same('compatibility_date', WRANGLER_MIRROR.compatibilityDate, workerOptions.compatibilityDate);
  same('compatibility_flags', WRANGLER_MIRROR.compatibilityFlags,
    workerOptions.compatibilityFlags ?? []);
  same('[vars]', sorted(WRANGLER_MIRROR.vars), sorted(workerOptions.bindings ?? {}));

  const durableObjects = {};
  for (const [name, value] of Object.entries(workerOptions.durableObjects ?? {})) {
    durableObjects[name] = { className: value.className, useSQLite: value.useSQLite === true };
  }
  same('durable_objects', sorted(WRANGLER_MIRROR.durableObjects), sorted(durableObjects));

  const ratelimits = {};
  for (const [name, value] of Object.entries(workerOptions.ratelimits ?? {})) {
    ratelimits[name] = { simple: { limit: value.simple?.limit, period: value.simple?.period } };
  }
  same('ratelimits', sorted(WRANGLER_MIRROR.ratelimits), sorted(ratelimits));

  const wasm = (workerOptions.modulesRules ?? []).some(
    (rule) => rule.type === 'CompiledWasm' && rule.include.includes('**/*.wasm'),
  );
  if (!wasm) differences.push('modules rules: no CompiledWasm rule for **/*.wasm');
  return differences;
}

function sorted(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)));
}

async function main() {
  const options = parseArguments(process.argv.slice(2));

  if (options.checkWrangler) {
    const differences = await wranglerDifferences();
    for (const difference of differences) process.stderr.write(`drift: ${difference}\n`);
    process.stdout.write(differences.length === 0 ? 'mirrored\n' : 'drift\n');
    process.exit(differences.length === 0 ? 0 : 1);
  }

  const rateLimit = Object.keys(options.rateLimit).length > 0 ? options.rateLimit : undefined;
  const { mf, url } = await startWorker({
    vars: options.vars,
    rateLimit,
    scriptPath: options.scriptPath,
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await mf.dispose();
    } finally {
      process.exit(0);
    }
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`ready ${url}\n`);
}

main().catch((error) => {
  process.stderr.write(`serve.mjs: ${error?.stack ?? error}\n`);
  process.exit(1);
});
