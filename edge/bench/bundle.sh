#!/usr/bin/env bash
# The size of what `wrangler deploy` would upload (0004; target <= 1 MiB gzipped), without
# deploying: `wrangler deploy --dry-run` with the repository's wrangler.toml, offline and with
# telemetry off, plus the raw and gzip -9 sizes of the built files themselves.
#
#   bash edge/bench/bundle.sh
#
# It runs wrangler.toml's [build] command first, as a deploy would.
set -euo pipefail
cd "$(dirname "$0")/../.."

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

export WRANGLER_SEND_METRICS=false CI=true WRANGLER_LOG_PATH="$out/logs"
npx --prefix edge wrangler deploy --dry-run --config wrangler.toml --outdir "$out/dist" \
  >"$out/wrangler.log" 2>&1 || { cat "$out/wrangler.log"; exit 1; }

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
grep -E 'Total Upload' "$out/wrangler.log" | sed 's/^[^T]*/wrangler: /'
for file in "$out"/dist/*; do
  raw=$(stat -c %s "$file")
  gz=$(gzip -9 -c "$file" | wc -c)
  awk -v f="$(basename "$file")" -v r="$raw" -v g="$gz" \
    'BEGIN { printf "%s: %d bytes, gzip -9 %d bytes (%.1f KiB)\n", f, r, g, g / 1024 }'
done
