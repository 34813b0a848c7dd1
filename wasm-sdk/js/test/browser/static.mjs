// A static file server on 127.0.0.1 (a free port) for the browser test: `/sdk/` is the
// installed package, `/test/` the test directory, `/corpus.json` the differential corpus.
// `.wasm` goes out as application/wasm, so `WebAssembly.instantiateStreaming` takes it.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/** `roots` maps a URL prefix (`/sdk/`) to a directory, or an exact path to a file. */
export async function startStatic(roots) {
  const served = [];
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://127.0.0.1").pathname);
    const file = locate(roots, path);
    const status = request.method === "GET" && file ? 200 : 404;
    served.push({ path, status });
    if (status !== 200) {
      response.writeHead(status, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const type = TYPES[extname(file)] ?? "application/octet-stream";
    response.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    createReadStream(file).pipe(response);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const close = () => new Promise((resolve) => server.close(resolve));
  return { origin, served, close };
}

function locate(roots, path) {
  for (const [prefix, target] of Object.entries(roots)) {
    if (!prefix.endsWith("/")) {
      if (path === prefix) {
        return target;
      }
      continue;
    }
    if (path.startsWith(prefix)) {
      const file = normalize(join(target, path.slice(prefix.length)));
      const inside = file.startsWith(target.endsWith(sep) ? target : target + sep);
      if (inside && statSync(file, { throwIfNoEntry: false })?.isFile()) {
        return file;
      }
    }
  }
  return undefined;
}
