#!/usr/bin/env bash
# Prints the path of a helm binary, building it once from the Go module proxy and caching
# it under ~/.cache/shoal/helm/<version>. Usage: e2e/tools/helm.sh  (then run that path).
# Env: SHOAL_HELM_VERSION (default below), SHOAL_HELM_CACHE (default ~/.cache/shoal/helm).
set -euo pipefail

VERSION="${SHOAL_HELM_VERSION:-v3.17.3}"
CACHE="${SHOAL_HELM_CACHE:-$HOME/.cache/shoal/helm}/$VERSION"
BIN="$CACHE/helm"

if [[ -x "$BIN" ]] && "$BIN" version --short >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "helm.sh: go is not installed" >&2; exit 1; }
mkdir -p "$CACHE"
# One builder at a time: parallel test sessions used to race on the shared partial folder.
exec 9>"$CACHE/.lock"
flock 9
if [[ -x "$BIN" ]] && "$BIN" version --short >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
echo "helm.sh: building helm $VERSION (once; cached in $CACHE)" >&2
partial="$(mktemp -d "$CACHE.partial.XXXXXX")"
trap 'rm -rf "$partial"' EXIT
GOBIN="$partial" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "helm.sh/helm/v3/cmd/helm@$VERSION" >&2
mv "$partial/helm" "$BIN"
echo "$BIN"
