#!/usr/bin/env bash
# Runs the client scenarios of clients/, each through its own API against a real Shoal:
#   python/  LangChain and LlamaIndex, each in its own venv pinned by its requirements file
#            (their pymilvus pins need not match ours): ~/.cache/shoal/venv-<name>-<hash>
#   go/      the Go SDK, pinned by go.mod/go.sum: modules and build cache in ~/.cache/shoal/go-{mod,build}
#   node/    the Node SDK, pinned by package-lock.json: ~/.cache/shoal/node-<hash>/node_modules
#   java/    the Java SDK, pinned by pom.xml: Maven repository ~/.cache/shoal/m2, classpath in
#            ~/.cache/shoal/java-<hash>/cp.txt; the JDK runs Scenario.java from source
# Each is installed on first use and only checked later. Without --address, one `shoal run`
# from the project's .venv serves the SDK scenarios (the Python ones start their own);
# `--address HOST:PORT` runs every scenario against that server instead (e.g. the proxy of a
# `shoal cluster run`). Any failing scenario fails the script.
# Usage: scripts/clients.sh [--address HOST:PORT] [pytest args for the Python scenarios...]
#        scripts/clients.sh --install   (the installs only, nothing runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
install_only=0
if [ "${1:-}" = "--install" ]; then
  install_only=1
  shift
fi
[ "$install_only" = 1 ] || [ -x .venv/bin/shoal ] || ./scripts/setup.sh --test
cache="${SHOAL_CACHE:-$HOME/.cache/shoal}"
mkdir -p "$cache"
address=""
if [ "${1:-}" = "--address" ]; then
  address="$2"
  shift 2
fi
status=0
log() { printf '[clients %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# Toolchains: Go, Node.js with npm, a JDK (javac: it runs Scenario.java from source) and Maven.
# Debian's Go is older than the Go SDK needs (1.24), so Go itself must be on the machine.
need_apt=""
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs"
command -v npm >/dev/null 2>&1 || need_apt="$need_apt npm"
command -v javac >/dev/null 2>&1 || need_apt="$need_apt default-jdk-headless"
command -v mvn >/dev/null 2>&1 || need_apt="$need_apt maven"
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
  else
    echo "missing toolchains for the SDK scenarios; install them with: sudo apt-get install$need_apt" >&2
    exit 1
  fi
fi
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "no Go toolchain (1.24 or later) for the Go SDK scenario; set GO=/path/to/go" >&2; exit 1; }

# ---- installs (first use only; later runs find the cache)
go_env=(env GOMODCACHE="$cache/go-mod" GOCACHE="$cache/go-build" GOFLAGS=-mod=readonly GOTOOLCHAIN=local)
install_go() {
  local bin="$cache/go-client-$(hash_of clients/go/go.mod clients/go/go.sum clients/go/main.go)/scenario"
  if [ ! -x "$bin" ]; then
    (cd clients/go && nice "${go_env[@]}" "$GO" build -o "$bin.partial" . && mv "$bin.partial" "$bin")
  fi
  echo "$bin"
}
install_node() {
  local dir="$cache/node-$(hash_of clients/node/package.json clients/node/package-lock.json)"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    cp clients/node/package.json clients/node/package-lock.json "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --cache "$cache/npm" >/dev/null)
    touch "$dir/.complete"
  fi
  echo "$dir/node_modules"
}
install_java() {
  local dir="$cache/java-$(hash_of clients/java/pom.xml)"
  if [ ! -f "$dir/cp.txt" ]; then
    mkdir -p "$dir"
    nice mvn -B -q -Dstyle.color=never -f clients/java/pom.xml -Dmaven.repo.local="$cache/m2" \
      dependency:build-classpath -Dmdep.outputFile="$dir/cp.partial" >&2
    mv "$dir/cp.partial" "$dir/cp.txt"
  fi
  echo "$dir/cp.txt"
}

python_venv() {
  local reqs=$1 name venv
  name="$(basename "$reqs" .txt)"; name="${name#requirements-}"
  venv="$cache/venv-$name-$(sha256sum "$reqs" | cut -c1-12)"
  if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q -r "$reqs" >&2
    touch "$venv/.complete"
  fi
  echo "$venv"
}

# --install: only the installs (scripts/test.sh runs this in the background while the tests run).
if [ "$install_only" = 1 ]; then
  for reqs in clients/python/requirements-*.txt; do
    ready="$(python_venv "$reqs")"
    log "python: $ready"
  done
  for sdk in go node java; do
    ready="$("install_$sdk")"
    log "$sdk: $ready"
  done
  exit 0
fi

for reqs in clients/python/requirements-*.txt; do
  name="$(basename "$reqs" .txt)"; name="${name#requirements-}"
  venv="$(python_venv "$reqs")"
  echo "== client scenarios: $name"
  SHOAL_URI="${address:+http://$address}" SHOAL_BIN="$root/.venv/bin/shoal" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore "clients/python/test_$name.py" "$@" || status=$?
done

# ---- one server for the SDK scenarios
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "${server_dir:-}" ]; then
    rm -rf "$server_dir"
  fi
}
trap stop_server EXIT
if [ -z "$address" ]; then
  server_dir="$(mktemp -d)"
  .venv/bin/shoal run --data "$server_dir/data" --host 127.0.0.1 --port 0 --http-port 0 >"$server_dir/log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1200); do
    address="$(sed -n 's/^Shoal listening on \([0-9.]*:[0-9]*\) .*/\1/p' "$server_dir/log" | head -1)"
    [ -n "$address" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$address" ]; then
    echo "shoal did not start:" >&2
    tail -50 "$server_dir/log" >&2
    exit 1
  fi
fi

# ---- the SDK scenarios: each prints "scenario ok" and exits 0, or names the step that failed
run_sdk() {
  local sdk=$1 t0 t1 t2 ready rc=0
  echo "== client scenario: $sdk SDK against $address"
  t0=$(date +%s)
  if ! ready="$("install_$sdk")"; then
    log "$sdk: install failed"
    status=1
    return
  fi
  t1=$(date +%s)
  case $sdk in
    go) SHOAL_ADDRESS="$address" timeout 600 "$ready" || rc=$? ;;
    node) SHOAL_ADDRESS="$address" NODE_PATH="$ready" timeout 600 node clients/node/scenario.js || rc=$? ;;
    java) SHOAL_ADDRESS="$address" timeout 600 java -cp "$(cat "$ready")" clients/java/Scenario.java || rc=$? ;;
  esac
  t2=$(date +%s)
  log "$sdk: install/check $((t1 - t0)) s, scenario $((t2 - t1)) s, exit $rc"
  [ "$rc" = 0 ] || status=$rc
}
for sdk in go node java; do
  run_sdk "$sdk"
done
if [ -n "$server_pid" ] && [ "$status" != 0 ]; then
  echo "--- shoal log (last 40 lines)" >&2
  tail -40 "$server_dir/log" >&2
fi
exit $status
