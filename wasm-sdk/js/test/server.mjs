// A tiny stand-in for the issuer's HTTP endpoints on 127.0.0.1, recording every request.
import { createServer } from "node:http";

/**
 * Serves `GET /v1/revocations?since=&limit=` over `feed.entries` the way the issuer pages
 * it, and `GET /.well-known/jwks.json` from `feed.jwks`. Set `feed.status` to answer every
 * request with that status instead, or `feed.body` to send that text instead of a page.
 */
export async function startIssuer() {
  const feed = { entries: [], jwks: { keys: [] }, status: 200, body: undefined, requests: [] };
  const server = createServer((request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    feed.requests.push(url.pathname + url.search);
    const send = (status, text) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(text);
    };
    if (feed.status !== 200) {
      return send(feed.status, JSON.stringify({ code: "server_busy" }));
    }
    if (feed.body !== undefined) {
      return send(200, feed.body);
    }
    if (url.pathname === "/.well-known/jwks.json") {
      return send(200, JSON.stringify(feed.jwks));
    }
    if (url.pathname !== "/v1/revocations") {
      return send(404, JSON.stringify({ code: "not_found" }));
    }
    const since = BigInt(url.searchParams.get("since") ?? "0");
    const limit = Number(url.searchParams.get("limit") ?? "500");
    const after = feed.entries.filter((entry) => BigInt(entry.cursor) > since);
    const entries = after.slice(0, limit);
    send(
      200,
      JSON.stringify({
        entries,
        next_cursor: entries.length > 0 ? entries.at(-1).cursor : String(since),
        has_more: after.length > entries.length,
      }),
    );
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    feed,
    base,
    feedUrl: `${base}/v1/revocations`,
    jwksUrl: `${base}/.well-known/jwks.json`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Resolves once `condition()` holds, checking every 5 ms, or rejects after `ms`. */
export async function until(condition, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error("condition not met in time");
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
