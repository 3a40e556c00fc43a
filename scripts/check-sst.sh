#!/usr/bin/env bash
# Type-checks sst.config.ts (and infra/) against the types `sst install` generates,
# offline: no AWS, no network beyond what npm already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# bun comes from npm. Prefer the platform package's binary: it needs no install script.
bun_path=""
for candidate in node_modules/@oven/bun-linux-x64/bin/bun node_modules/@oven/bun-linux-x64-baseline/bin/bun node_modules/@oven/bun-linux-aarch64/bin/bun node_modules/bun/bin/bun.exe; do
  if [ -x "$candidate" ]; then bun_path="$PWD/$candidate"; break; fi
done
if [ -z "$bun_path" ]; then echo "check-sst: no bun binary under node_modules (npm ci installs it)" >&2; exit 1; fi

export SST_SKIP_DEPENDENCY_CHECK=true SST_TELEMETRY_DISABLED=1 SST_BUN_PATH="$bun_path"
npx --no-install sst install --stage typecheck >/dev/null

# sst's own sources under .sst/ report errors of their own (a TS2345 in function.ts): not ours.
out=$(npx --no-install tsc --noEmit -p tsconfig.sst.json 2>&1 | grep -v '^\.sst/' | grep -v '^npm warn' || true)
if [ -n "$out" ]; then
  echo "$out"
  echo "check-sst: sst.config.ts does not type-check against the generated SST types" >&2
  exit 1
fi
echo "check-sst: sst.config.ts type-checks against sst install's types"
