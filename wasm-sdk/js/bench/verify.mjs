// Throughput of `Verifier.verify` against `jose.jwtVerify` on the same HS256 and EdDSA tokens,
// and against the practical floor in Node: a synchronous `createHmac` + `timingSafeEqual` +
// `JSON.parse` of the payload (no claim checks) for HS256, `crypto.verify` + `JSON.parse` for
// EdDSA. Also prints the size of the `.wasm` module, raw and gzipped. Run `npm run build`
// first, then `npm run bench` (options: `--samples N`, `--seconds S` per sample).
//
// Each case is warmed up for one sample's time, then timed over `samples` samples; the table
// gives the median sample and the spread. jose's `jwtVerify` is asynchronous and is timed one
// awaited call after another, as a request handler would use it.
import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  sign,
  timingSafeEqual,
  verify as verifySignature,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { arch, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

import * as jose from "jose";
import { Verifier } from "@portcullis/sdk";

const { values } = parseArgs({
  options: {
    samples: { type: "string", default: "5" },
    seconds: { type: "string", default: "1" },
  },
});
const SAMPLES = Number(values.samples);
const SAMPLE_NS = BigInt(Math.round(Number(values.seconds) * 1e9));

const ISSUER = "https://auth.example.com";
const AUDIENCE = "portcullis";
const now = Math.floor(Date.now() / 1000);
// The issuer's claim set, the shape of a real access token.
const CLAIMS = {
  iss: ISSUER,
  sub: "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
  aud: AUDIENCE,
  exp: now + 3600,
  iat: now - 10,
  nbf: now - 10,
  jti: "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
  tid: "tnt_00000000000000000000000000000001",
  sid: "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
  roles: ["admin"],
  perms: ["users:read", "users:write", "billing:*"],
  amr: ["pwd", "otp"],
};

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const secret = Buffer.from("bench-secret-of-at-least-32-bytes!!", "utf8");
const hsInput = `${b64({ alg: "HS256", kid: "hs-1", typ: "at+jwt" })}.${b64(CLAIMS)}`;
const HS_TOKEN = `${hsInput}.${createHmac("sha256", secret).update(hsInput).digest("base64url")}`;

const ed = generateKeyPairSync("ed25519");
const { kty, crv, x } = ed.publicKey.export({ format: "jwk" });
const JWKS = { keys: [{ kty, crv, x, kid: "ed-1", alg: "EdDSA", use: "sig" }] };
const edInput = `${b64({ alg: "EdDSA", kid: "ed-1", typ: "at+jwt" })}.${b64(CLAIMS)}`;
const edSignature = sign(null, Buffer.from(edInput), ed.privateKey).toString("base64url");
const ED_TOKEN = `${edInput}.${edSignature}`;

// The SDK, as an application configures it (default clock: Date.now).
const policy = { issuer: ISSUER, audience: AUDIENCE };
const sdkHs = new Verifier({ ...policy, keys: { hs256: [{ kid: "hs-1", secret }] } });
const sdkEd = new Verifier({ ...policy, keys: { jwks: JWKS } });

// jose with the same checks: algorithm, typ, issuer, audience, exp/nbf; its keys imported once
// (its fastest use), and also as a raw secret / a local JWKS, as its README shows.
const joseOptions = (alg) => ({ ...policy, algorithms: [alg], typ: "at+jwt" });
const joseHsKey = await jose.importJWK({ kty: "oct", k: secret.toString("base64url") }, "HS256");
const joseEdKey = await jose.importJWK(JWKS.keys[0], "EdDSA");
const joseJwks = jose.createLocalJWKSet(JWKS);

// The floor: the signature check and payload parse every verifier must do, and nothing else.
function floorHs256(token) {
  const dot1 = token.indexOf(".");
  const dot2 = token.indexOf(".", dot1 + 1);
  const expected = createHmac("sha256", secret).update(token.slice(0, dot2)).digest();
  const signature = Buffer.from(token.slice(dot2 + 1), "base64url");
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new Error("bad signature");
  }
  return JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), "base64url").toString());
}
const edPublic = createPublicKey({ key: JWKS.keys[0], format: "jwk" });
function floorEdDsa(token) {
  const dot1 = token.indexOf(".");
  const dot2 = token.indexOf(".", dot1 + 1);
  const data = Buffer.from(token.slice(0, dot2));
  const signature = Buffer.from(token.slice(dot2 + 1), "base64url");
  if (!verifySignature(null, data, edPublic, signature)) {
    throw new Error("bad signature");
  }
  return JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), "base64url").toString());
}

const cases = [
  ["hs256 sdk Verifier.verify", () => sdkHs.verify(HS_TOKEN).sub],
  [
    "hs256 jose jwtVerify (CryptoKey)",
    async () => (await jose.jwtVerify(HS_TOKEN, joseHsKey, joseOptions("HS256"))).payload.sub,
  ],
  [
    "hs256 jose jwtVerify (Uint8Array)",
    async () => (await jose.jwtVerify(HS_TOKEN, secret, joseOptions("HS256"))).payload.sub,
  ],
  ["hs256 floor createHmac+JSON.parse", () => floorHs256(HS_TOKEN).sub],
  ["eddsa sdk Verifier.verify", () => sdkEd.verify(ED_TOKEN).sub],
  [
    "eddsa jose jwtVerify (CryptoKey)",
    async () => (await jose.jwtVerify(ED_TOKEN, joseEdKey, joseOptions("EdDSA"))).payload.sub,
  ],
  [
    "eddsa jose jwtVerify (local JWKS)",
    async () => (await jose.jwtVerify(ED_TOKEN, joseJwks, joseOptions("EdDSA"))).payload.sub,
  ],
  ["eddsa floor crypto.verify+JSON.parse", () => floorEdDsa(ED_TOKEN).sub],
];

/** Runs `run` in batches until `budget` nanoseconds passed; resolves to ops per second. */
async function sample(run, isAsync, budget) {
  let ops = 0;
  let batch = 64;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < budget) {
    if (isAsync) {
      for (let i = 0; i < batch; i++) {
        await run();
      }
    } else {
      for (let i = 0; i < batch; i++) {
        run();
      }
    }
    ops += batch;
    elapsed = process.hrtime.bigint() - start;
    if (elapsed < budget / 20n) {
      batch *= 2;
    }
  }
  return (ops * 1e9) / Number(elapsed);
}

const ops = (rate) => Math.round(rate).toString();
const micros = (rate) => (1e6 / rate).toFixed(2);
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

const wasmDir = join(dirname(fileURLToPath(import.meta.url)), "..", "wasm", "web");
const wasm = readFileSync(join(wasmDir, "portcullis_wasm_sdk_bg.wasm"));
const gz = gzipSync(wasm, { level: 9 }).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(
  `node ${process.version}, ${cpus()[0]?.model ?? "?"} (${arch()}, ${cpus().length} cpus)`,
);
console.log(`tokens: HS256 ${HS_TOKEN.length} bytes, EdDSA ${ED_TOKEN.length} bytes`);
console.log(`wasm: ${wasm.length} B (${kb(wasm.length)}) raw, ${gz} B (${kb(gz)}) gzip -9`);
console.log(`${SAMPLES} samples of ${values.seconds} s after a warm-up of the same length\n`);

const results = new Map();
for (const [name, run] of cases) {
  // Every case verifies the token for real before it is timed.
  const isAsync = run() instanceof Promise;
  if ((await run()) !== CLAIMS.sub) {
    throw new Error(`${name}: did not verify the token`);
  }
  await sample(run, isAsync, SAMPLE_NS);
  const rates = [];
  for (let i = 0; i < SAMPLES; i++) {
    rates.push(await sample(run, isAsync, SAMPLE_NS));
  }
  const rate = median(rates);
  results.set(name, rate);
  const spread = `${ops(Math.min(...rates))}–${ops(Math.max(...rates))}`;
  console.log(
    `${name.padEnd(38)} ${ops(rate).padStart(9)} ops/s  ${micros(rate).padStart(8)} µs/op  (${spread})`,
  );
}

const rate = (name) => results.get(name);
const verdict = (ok) => (ok ? "met" : "MISSED");
// Against jose's faster way of being called, whichever it was in this run.
const fastest = (...names) => Math.max(...names.map(rate));
const hsJose =
  rate("hs256 sdk Verifier.verify") /
  fastest("hs256 jose jwtVerify (CryptoKey)", "hs256 jose jwtVerify (Uint8Array)");
const hsFloor = rate("hs256 floor createHmac+JSON.parse") / rate("hs256 sdk Verifier.verify");
const edJose =
  rate("eddsa sdk Verifier.verify") /
  fastest("eddsa jose jwtVerify (CryptoKey)", "eddsa jose jwtVerify (local JWKS)");
const edFloor = rate("eddsa floor crypto.verify+JSON.parse") / rate("eddsa sdk Verifier.verify");
console.log("");
console.log(
  `hs256 sdk / fastest jose:       ${hsJose.toFixed(2)}×  (target ≥ 10×: ${verdict(hsJose >= 10)})`,
);
console.log(
  `hs256 sdk time / floor time:    ${hsFloor.toFixed(2)}×  (target ≤ 1.5×: ${verdict(hsFloor <= 1.5)})`,
);
console.log(
  `eddsa sdk / fastest jose:       ${edJose.toFixed(2)}×  (target ≥ 1×: ${verdict(edJose >= 1)})`,
);
console.log(`eddsa sdk time / floor time:    ${edFloor.toFixed(2)}×  (no target)`);
console.log(
  `wasm gzip -9:                   ${kb(gz)}  (target ≤ 150 KB: ${verdict(gz <= 150_000)})`,
);
