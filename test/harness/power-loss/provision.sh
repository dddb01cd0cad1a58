#!/bin/sh
# Builds plfs (the power-loss file system of the tests) once per source version:
#   provision.sh <plfs.c> <output binary>
# Installs what it needs when missing and it runs as root on a Debian-like machine (fuse3,
# libfuse3-dev, pkg-config, gcc); otherwise exits non-zero with what to install. The caller
# holds a lock (flock), so parallel test files never run apt-get or gcc at the same time.
set -eu
src=$1
out=$2

if [ -x "$out" ]; then
  exit 0
fi

if [ ! -c /dev/fuse ]; then
  echo "/dev/fuse is missing: the power-loss tests need FUSE (load the fuse module, or give the container --device /dev/fuse --cap-add SYS_ADMIN)" >&2
  exit 1
fi

missing() {
  ! command -v fusermount3 >/dev/null 2>&1 ||
    ! command -v gcc >/dev/null 2>&1 ||
    ! command -v pkg-config >/dev/null 2>&1 ||
    ! pkg-config --exists fuse3
}

if missing; then
  packages="fuse3 libfuse3-dev pkg-config gcc libc6-dev"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the power-loss tests need FUSE 3 and a C compiler: install $packages (Debian/Ubuntu names) and run again" >&2
    exit 1
  fi
  echo "installing $packages for the power-loss tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Other test files install packages too (Chromium: test/harness/browser.ts): one apt-get at a
  # time, through the same lock file, and dpkg's own lock waited for rather than failed on.
  apt="flock -w 900 /tmp/dgent-apt.lock apt-get -o DPkg::Lock::Timeout=600"
  if ! $apt install -y --no-install-recommends $packages >&2; then
    $apt update >&2
    $apt install -y --no-install-recommends $packages >&2
  fi
  if missing; then
    echo "installed $packages, but fusermount3, gcc or the fuse3 pkg-config entry is still missing" >&2
    exit 1
  fi
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
# shellcheck disable=SC2046
gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$src" $(pkg-config fuse3 --cflags --libs) -o "$tmp"
mv "$tmp" "$out"
