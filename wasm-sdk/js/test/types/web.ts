// The declarations of the web entry: the module source types of init() and initSync().
import { Verifier, init, initSync } from "@portcullis/sdk/web";

await init();
await init(new URL("https://cdn.example/portcullis.wasm"));
await init(fetch("/portcullis.wasm"));
initSync(new Uint8Array(8));
const verifier = new Verifier({ issuer: "i", audience: "a", keys: { jwks: { keys: [] } } });
void verifier;
