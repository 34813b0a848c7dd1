// Builds the package in place: the wasm module twice with wasm-pack (`nodejs`: CommonJS that
// loads itself synchronously; `web`: an ES module with `init`), then the TypeScript layer
// twice with tsc (esm/ and cjs/). Needs wasm-pack and the wasm-bindgen CLI of the version
// pinned in Cargo.toml on PATH (scripts/sdk-tools at the repository root installs them).
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const js = dirname(dirname(fileURLToPath(import.meta.url)));
const crate = dirname(js);

/**
 * Rewrites the wasm module at `path` without its `name` custom section (function names for
 * stack traces, about 10 KB gzipped). Custom sections carry no semantics; wasm-pack has no
 * flag for wasm-bindgen's `--remove-name-section`, and stripping symbols in the linker also
 * drops the `target_features` section wasm-bindgen reads.
 */
function removeNameSection(path) {
  const bytes = readFileSync(path);
  const leb = (at) => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[at++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) {
        return [value, at];
      }
    }
  };
  const kept = [bytes.subarray(0, 8)]; // magic and version
  let at = 8;
  while (at < bytes.length) {
    const [size, body] = leb(at + 1);
    const end = body + size;
    if (end > bytes.length) {
      throw new Error(`${path}: a section runs past the end`);
    }
    let custom;
    if (bytes[at] === 0) {
      const [length, name] = leb(body);
      custom = bytes.subarray(name, name + length).toString();
    }
    if (custom !== "name") {
      kept.push(bytes.subarray(at, end));
    }
    at = end;
  }
  writeFileSync(path, Buffer.concat(kept));
}

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
// `--profile wasm-release` (root Cargo.toml): release with LTO and one codegen unit.
for (const [target, type] of [
  ["nodejs", "commonjs"],
  ["web", "module"],
]) {
  const out = join(js, "wasm", target === "nodejs" ? "node" : "web");
  const args = [
    "build",
    "--profile",
    "wasm-release",
    "--mode",
    "no-install",
    "--no-pack",
    "--target",
    target,
  ];
  run("wasm-pack", [...args, "--out-dir", out, "--", "--locked"], crate);
  // wasm-pack writes a `.gitignore` of `*`, which npm would also read as an ignore list, and
  // a declaration of the raw wasm exports that nothing imports.
  for (const name of readdirSync(out)) {
    if (name === ".gitignore" || name.endsWith("_bg.wasm.d.ts")) {
      rmSync(join(out, name));
    }
  }
  removeNameSection(join(out, "portcullis_wasm_sdk_bg.wasm"));
  // The package is `"type": "module"`; the nodejs glue is CommonJS.
  writeFileSync(join(out, "package.json"), `${JSON.stringify({ type })}\n`);
}

const tsc = join(js, "node_modules", "typescript", "bin", "tsc");
run(process.execPath, [tsc, "-p", "tsconfig.esm.json"], js);
run(process.execPath, [tsc, "-p", "tsconfig.cjs.json"], js);
writeFileSync(join(js, "cjs", "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);
