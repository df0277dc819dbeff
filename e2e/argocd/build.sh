#!/usr/bin/env bash
# Build Argo CD's application controller and repo server from its Go module, without Docker.
#
# Argo CD ships one binary that acts by the name it is called under. Upstream's main links
# every command (the CLI, API server, Dex, notifications, ...); the e2e runs two, so the
# binary is built from a main of our own, added to the copy of the source, that links the
# application controller, the repo server and git-ask-pass (which the repo server runs for
# git credentials): a fifth less to compile. It is linked as argocd-application-controller
# and argocd-repo-server. Its go.mod replaces only with published versions, so the module
# builds as the main module from a copy of its source (the module cache is read-only). The
# CRDs come from the same source.
#
# v3.2.12 does not build (its controller/cache calls settings.ValidateExternalURL, which that
# release lacks), hence v3.2.11.
#
# Output:  ${SHOAL_E2E_CACHE:-$HOME/.cache/shoal/e2e}/argocd-<version>/{bin,crds}/
# A warm run does nothing. Prints the version dir as its last line.
set -euo pipefail

ARGOCD_VERSION="${SHOAL_ARGOCD_VERSION:-v3.2.11}"
CACHE="${SHOAL_E2E_CACHE:-$HOME/.cache/shoal/e2e}"
ROOT="$CACHE/argocd-$ARGOCD_VERSION"
BIN="$ROOT/bin"

log() { printf '[argocd-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
built() { [[ -x "$BIN/argocd" && -L "$BIN/argocd-repo-server" && -d "$ROOT/crds" ]]; }

# shellcheck source=../tools/go-cache.sh
source "$(dirname "$0")/../tools/go-cache.sh"
go_cache_begin "$ROOT" built || { echo "$ROOT"; exit 0; }
start=$(date +%s)
work="$ROOT/src"
if [[ ! -f "$work/go.mod" ]]; then
  log "downloading github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION"
  dir=$(cd "$ROOT" && "$GO" mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" \
        | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -n "$dir" ]] || { log "module download failed"; exit 1; }
  rm -rf "$work.tmp" && cp -r "$dir" "$work.tmp" && chmod -R u+w "$work.tmp" && mv "$work.tmp" "$work"
fi
log "building (GOMAXPROCS=$GOMAXPROCS; about 15 min of CPU)"
mkdir -p "$BIN"
mkdir -p "$work/cmd/shoal-e2e"
cat > "$work/cmd/shoal-e2e/main.go" <<'GO'
// Command argocd runs the Argo CD commands the Shoal e2e uses, chosen by the name it is called under.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	name := filepath.Base(os.Args[0])
	if val := os.Getenv("ARGOCD_BINARY_NAME"); val != "" {
		name = val
	}
	var command *cobra.Command
	switch name {
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass":
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "%s: this build has argocd-application-controller, argocd-repo-server and argocd-git-ask-pass only\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
(cd "$work" && nice -n 10 "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/argocd.tmp" ./cmd/shoal-e2e)
mv "$BIN/argocd.tmp" "$BIN/argocd"
ln -sf argocd "$BIN/argocd-application-controller"
ln -sf argocd "$BIN/argocd-repo-server"
rm -rf "$ROOT/crds.tmp" && mkdir -p "$ROOT/crds.tmp"
cp "$work"/manifests/crds/application-crd.yaml "$work"/manifests/crds/appproject-crd.yaml "$ROOT/crds.tmp/"
mv "$ROOT/crds.tmp" "$ROOT/crds"
log "built in $(( $(date +%s) - start )) s"
echo "$ROOT"
