// Tests the built package as users get it: packs it with `npm pack`, installs the tarball
// into an empty project in a temporary directory, and runs the tests there, so they import
// `@portcullis/sdk` by name through its `exports` map (ESM and CommonJS) and see only the
// files the package ships. Run `npm run build` first. Arguments name test directories to run
// instead of `test` (e.g. `test/browser`).
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
  // Libraries the tests import besides the SDK (jose, for the interop test), copied from this
  // package's exact-pinned devDependencies; they have no dependencies of their own.
  for (const name of ["jose"]) {
    const from = join(js, "node_modules", name);
    cpSync(from, join(project, "node_modules", name), { recursive: true });
  }
  cpSync(join(js, "test"), join(project, "test"), { recursive: true });
  const tsc = join(js, "node_modules", "typescript", "bin", "tsc");
  run(process.execPath, [tsc, "-p", join("test", "types", "tsconfig.json")], project);
  console.log("test: the declarations type-check as ESM, CommonJS and web (test/types)");
  // The test directories to run: `test` (the Node suites) unless the arguments name others,
  // as scripts/test-browser.mjs does.
  const dirs = process.argv.length > 2 ? process.argv.slice(2) : ["test"];
  const files = dirs.flatMap((dir) =>
    readdirSync(join(project, dir))
      .filter((name) => /\.test\.[cm]js$/.test(name))
      .map((name) => join(dir, name)),
  );
  const tests = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
    cwd: project,
    stdio: "inherit",
  });
  process.exitCode = tests.status ?? 1;
} finally {
  rmSync(project, { recursive: true, force: true });
}
