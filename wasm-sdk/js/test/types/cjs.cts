// The declarations a CommonJS TypeScript user gets through `require`.
import sdk = require("@portcullis/sdk");

const verifier: sdk.Verifier = new sdk.Verifier({
  issuer: "https://auth.example",
  audience: "api",
  keys: { jwks: '{"keys":[]}' },
});
const claims: sdk.Claims = verifier.verify("token");
const code: sdk.PortcullisErrorCode = "config_invalid";
sdk.initSync(new Uint8Array(8));
const ready: Promise<void> = sdk.init();
void [claims, code, ready];
