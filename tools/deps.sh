#!/usr/bin/env bash
# Installs the Debian packages warren needs, only those missing.
# usage: tools/deps.sh build|test|demo|bench
set -euo pipefail
build_pkgs="build-essential cmake pkg-config libuv1-dev libwolfssl-dev libmsgpack-dev
  libsodium-dev libssl-dev libjansson-dev libhttp-parser-dev libwslay-dev python3"
case "${1:-build}" in
  build) pkgs="$build_pkgs" ;;
  test)  pkgs="$build_pkgs curl openssl iproute2 iptables procps clang-format haproxy" ;;
  demo)  pkgs="$build_pkgs curl procps" ;;
  bench) pkgs="$build_pkgs iperf3 haproxy openssh-server openssh-client procps serf" ;;
  *) echo "usage: $0 build|test|demo|bench" >&2; exit 1 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing:$missing" >&2
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
