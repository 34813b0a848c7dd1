// The baseline of the latency and CPU benchmarks: a worker that forwards every request to
// PORTCULLIS_ORIGIN_URL unchanged and decides nothing, started with exactly the gated worker's
// Miniflare options. The difference between the two is what gating costs.

export default {
  async fetch(request, env) {
    const incoming = new URL(request.url);
    const target = new URL(incoming.pathname + incoming.search, env.PORTCULLIS_ORIGIN_URL);
    return fetch(new Request(target, request));
  },
};

// wrangler.toml binds this class as a Durable Object, and workerd refuses a binding to a class
// the script does not export; the pass-through worker never uses it.
export class RevocationReplica {
  fetch() {
    return new Response('unused', { status: 404 });
  }
}
