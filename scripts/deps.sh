#!/usr/bin/env bash
# Installs the Debian packages that building and testing fsc need (as root;
# with sudo otherwise). Does nothing when every package is already there.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config libsodium-dev libcmocka-dev
  clang libclang-rt-14-dev valgrind binutils
  swig python3 python3-dev python3-pytest python3-dogpile.cache
  ruby ruby-dev ruby-minitest ruby-activesupport
  liblua5.4-dev lua5.4 golang-go
  python3-mesonpy python3-build python3-venv patchelf luarocks
  btrfs-progs
  faketime # tests/multihost/clock_skew.sh: hosts whose wall clocks differ
  glusterfs-server glusterfs-client # tests/multihost: one volume, two client "hosts"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
