// Tests the built package as users get it: packs it with `npm pack`, installs the tarball
// into an empty project in a temporary directory, and runs the tests there, so they import
// `@portcullis/sdk` by name through its `exports` map (ESM and CommonJS) and see only the
// files the package ships. Run `npm run build` first.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const js = dirname(dirname(fileURLToPath(import.meta.url)));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"] });
  if (result.error || result.status !== 0) {
    process.stdout.write(result.stdout ?? "");
    throw new Error(`${command} ${args.join(" ")} failed: ${result.error ?? result.status}`);
  }
  return result.stdout.toString();
}

const project = mkdtempSync(join(tmpdir(), "portcullis-sdk-test-"));
try {
  const [packed] = JSON.parse(run(npm, ["pack", "--json", "--pack-destination", project], js));
  console.log(`test: packed ${packed.filename}: ${packed.entryCount} files, ${packed.size} bytes`);
  writeFileSync(
    join(project, "package.json"),
    `${JSON.stringify({ name: "portcullis-sdk-test", private: true, type: "module" })}\n`,
  );
  run(
    npm,
    ["install", "--no-audit", "--no-fund", "--ignore-scripts", `./${packed.filename}`],
    project,
  );
  cpSync(join(js, "test"), join(project, "test"), { recursive: true });
  const tsc = join(js, "node_modules", "typescript", "bin", "tsc");
  run(process.execPath, [tsc, "-p", join("test", "types", "tsconfig.json")], project);
  console.log("test: the declarations type-check as ESM, CommonJS and web (test/types)");
  const files = readdirSync(join(project, "test"))
    .filter((name) => /\.test\.[cm]js$/.test(name))
    .map((name) => join("test", name));
  const tests = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
    cwd: project,
    stdio: "inherit",
  });
  process.exitCode = tests.status ?? 1;
} finally {
  rmSync(project, { recursive: true, force: true });
}
