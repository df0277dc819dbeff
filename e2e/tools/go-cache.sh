# Sourced by the e2e build scripts that compile a Go module into ~/.cache/shoal/e2e.
#
#   go_cache_begin ROOT BUILT_FN   prints ROOT's result and exits when BUILT_FN says the cache is
#                                  warm; otherwise finds Go (sets GO), takes ROOT/.lock (a second
#                                  caller waits, then finds the cache warm) and sets the
#                                  environment a 2-core machine builds with.
# The caller defines log() and prints its own result line once the build is done.

go_cache_begin() {
  local root="$1" built="$2"
  if "$built"; then log "cached: $root"; return 10; fi
  GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  [[ -x "$GO" ]] || { log "no Go toolchain found (set GO=/path/to/go)"; exit 1; }
  mkdir -p "$root"
  exec 9>"$root/.lock"
  flock 9
  if "$built"; then log "cached: $root"; return 10; fi
  # Few parallel compiles keep a 2-core machine responsive and its memory bounded.
  export GOMAXPROCS="${SHOAL_E2E_GOMAXPROCS:-2}" GOFLAGS="-mod=mod" GOTOOLCHAIN=local CGO_ENABLED=0
  return 0
}
