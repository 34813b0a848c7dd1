// Builds the package in place: the wasm module twice with wasm-pack (`nodejs`: CommonJS that
// loads itself synchronously; `web`: an ES module with `init`), then the TypeScript layer
// twice with tsc (esm/ and cjs/). Needs wasm-pack and the wasm-bindgen CLI of the version
// pinned in Cargo.toml on PATH (scripts/sdk-tools at the repository root installs them).
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const js = dirname(dirname(fileURLToPath(import.meta.url)));
const crate = dirname(js);

function run(command, args, cwd) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, stdio: "inherit" });
  if (result.error) {
    throw new Error(`${command}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status}`);
  }
  console.log(`build: ${command} ${args.join(" ")}: ${Date.now() - started} ms`);
}

for (const out of ["esm", "cjs", "wasm"]) {
  rmSync(join(js, out), { recursive: true, force: true });
}

// `--mode no-install`: a wasm-bindgen CLI that differs from the crate is an error, never a
// silent download (../shared/TOOLCHAIN.md section 1). `--no-pack`: the package.json is ours.
for (const [target, type] of [
  ["nodejs", "commonjs"],
  ["web", "module"],
]) {
  const out = join(js, "wasm", target === "nodejs" ? "node" : "web");
  const args = ["build", "--release", "--mode", "no-install", "--no-pack", "--target", target];
  run("wasm-pack", [...args, "--out-dir", out, "--", "--locked"], crate);
  // wasm-pack writes a `.gitignore` of `*`, which npm would also read as an ignore list, and
  // a declaration of the raw wasm exports that nothing imports.
  for (const name of readdirSync(out)) {
    if (name === ".gitignore" || name.endsWith("_bg.wasm.d.ts")) {
      rmSync(join(out, name));
    }
  }
  // The package is `"type": "module"`; the nodejs glue is CommonJS.
  writeFileSync(join(out, "package.json"), `${JSON.stringify({ type })}\n`);
}

const tsc = join(js, "node_modules", "typescript", "bin", "tsc");
run(process.execPath, [tsc, "-p", "tsconfig.esm.json"], js);
run(process.execPath, [tsc, "-p", "tsconfig.cjs.json"], js);
writeFileSync(join(js, "cjs", "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
