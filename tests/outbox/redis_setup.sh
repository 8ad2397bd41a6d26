#!/usr/bin/env bash
# Makes redis-server available for the outbox's BullMQ tests (tests/outbox/bullmq_test.ts and
# tests/node/test-outbox.mjs), from the Debian package. The tests start their own instance from
# a temporary folder on a free 127.0.0.1 port; nothing is started here. When it cannot be had
# (not root, no apt), it says why and exits 0: the tests then skip with "BULLMQ SKIPPED: ...".
# Safe to run again.
set -uo pipefail

say() { echo "redis setup: $*"; }
started=$(date +%s)

if command -v redis-server > /dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
  say "BULLMQ UNAVAILABLE: redis-server is missing, and apt-get as root is not at hand"
  exit 0
fi
say "installing redis-server from Debian packages"
export DEBIAN_FRONTEND=noninteractive
log=/tmp/postie-redis-apt.log
apt_get() { # args...; everything apt does shares a budget of about 2 minutes
  local left=$((started + 120 - $(date +%s)))
  [ "$left" -gt 5 ] || return 124
  timeout "$left" apt-get -o DPkg::Lock::Timeout=30 "$@" >> "$log" 2>&1
}
install() {
  apt_get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold redis-server
}
if ! compgen -G "/var/lib/apt/lists/*_Packages*" > /dev/null || ! install; then
  apt_get update -qq && install || say "BULLMQ UNAVAILABLE: apt-get failed (see $log)"
fi
# The package starts a system-wide service where an init system runs; the tests use their own.
if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server > /dev/null 2>&1 || true
fi
exit 0
