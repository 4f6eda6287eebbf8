#!/usr/bin/env bash
# The layer rule from src/lib.rs, checked: imports only go down the list below, the pub/sub
# core, the auth layer and the SSE layer never touch axum, and nothing reaches a layer above it.
# Exits non-zero naming each file and import that breaks the rule.
set -euo pipefail
cd "$(dirname "$0")/.."

# Top to bottom; a module may import only modules of a lower rank (a larger number).
declare -A rank=(
  [commands]=0 [cli]=1 [bench]=2 [browser]=2 [client]=3
  [http]=4 [auth]=5 [pubsub]=5 [sse]=6 [server]=7 [sync]=8
)

status=0
fail() { echo "layer rule: $*" >&2; status=1; }

for file in $(find src -name '*.rs' ! -path src/lib.rs ! -path src/main.rs | sort); do
  rel=${file#src/}
  layer=${rel%%/*}
  layer=${layer%.rs}
  own=${rank[$layer]:-}
  [ -n "$own" ] || { fail "$file is in no layer; add it to src/lib.rs's map and to this script"; continue; }
  # Code lines only: a doc comment may point anywhere.
  code=$(grep -v '^\s*//' "$file" || true)
  if grep -q 'crate::{' <<<"$code"; then
    fail "$file: import crate paths one by one (crate::{...} hides which layers it uses)"
  fi
  for used in $(grep -o 'crate::[a-z_]*' <<<"$code" | sed 's/crate:://' | sort -u); do
    target=${rank[$used]:-}
    [ -n "$target" ] || { fail "$file imports crate::$used, which is in no layer"; continue; }
    if [ "$used" != "$layer" ] && [ "$target" -le "$own" ]; then
      fail "$file ($layer) imports crate::$used: only layers below $layer may be imported"
    fi
  done
  case $layer in
    sse|pubsub|auth)
      if grep -qE '\baxum(_server)?::' <<<"$code"; then
        fail "$file: the $layer layer must not use axum (it knows nothing of HTTP frameworks)"
      fi
      ;;
  esac
done

[ $status -eq 0 ] && echo "layers: every import goes down (src/lib.rs)"
exit $status
