#!/usr/bin/env bash
# Builds the real test peers from their Go modules, pinned by peers/versions.env and the
# wrapper modules' go.mod/go.sum. Each binary is cached per machine under
# $FERRY_PEERS_CACHE (default ~/.cache/ferry/peers) in a folder named by a hash of its
# pins, so it is rebuilt only when a pin changes; .peers/bin links to the current ones.
# Usage: peers/build.sh [PEER...]   (default: every peer)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source peers/versions.env
cache=${FERRY_PEERS_CACHE:-$HOME/.cache/ferry/peers}
bin="$root/.peers/bin"
mkdir -p "$cache" "$bin"
export CGO_ENABLED=0 GOFLAGS=-trimpath

wanted() { [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }
only=("$@") # optional: build only the named peers

pin_hash() { # hash of the words and files that decide a binary
  { go version; for x in "$@"; do if [ -f "$x" ]; then cat "$x"; else echo "$x"; fi; done; } |
    sha256sum | cut -c1-16
}

# build NAME HASH COMMAND...: runs COMMAND with $out set, unless the cached binary exists.
build() {
  local name=$1 hash=$2; shift 2
  wanted "$name" || return 0
  local dir="$cache/$name-$hash"
  if [ ! -x "$dir/$name" ]; then
    echo "building $name ($hash)..."
    local start=$SECONDS
    mkdir -p "$dir.tmp"
    out="$dir.tmp/$name" "$@"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "built $name in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/$name" "$bin/$name"
}

go_install() { # go_install PACKAGE@VERSION: builds a module that installs cleanly
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" go install "$1"
  mv "$tmp/$name" "$out"
  rm -rf "$tmp"
}

in_module() { # in_module DIR PACKAGE [LDFLAGS]: builds PACKAGE inside a wrapper module
  (cd "$root/peers/$1" && go build -ldflags "-s -w ${3:-}" -o "$out" "$2")
}

k8s_minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor"

build nats-server "$(pin_hash "$NATS_SERVER_VERSION")" \
  go_install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
build helm "$(pin_hash "$HELM_VERSION")" \
  go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
build ferry-vcsim "$(pin_hash $(find peers/vcsim -name '*.go' -o -name 'go.*' | sort))" \
  in_module vcsim .
build etcd "$(pin_hash peers/etcd/go.mod peers/etcd/go.sum)" \
  in_module etcd go.etcd.io/etcd/server/v3
build kube-apiserver "$(pin_hash peers/kube-apiserver/go.mod peers/kube-apiserver/go.sum "$k8s_ldflags")" \
  in_module kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
