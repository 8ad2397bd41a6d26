#!/usr/bin/env bash
# Makes redis-server available for the outbox's BullMQ tests (tests/outbox/bullmq_test.ts and
# tests/node/test-outbox.mjs), from the Debian package. The tests start their own instance from
# a temporary folder on a free 127.0.0.1 port; nothing is started here. When it cannot be had
# (not root, no apt), it says why and exits 0: the tests then skip with "BULLMQ SKIPPED: ...".
# Safe to run again.
set -uo pipefail
source "$(dirname "$0")/../_helpers/apt.sh"

say() { echo "redis setup: $*"; }

if command -v redis-server > /dev/null; then exit 0; fi
if ! apt_usable; then
  say "BULLMQ UNAVAILABLE: redis-server is missing, and apt-get as root is not at hand"
  exit 0
fi
say "installing redis-server from Debian packages"
log=/tmp/postie-redis-apt.log
apt_install "$log" redis-server || say "BULLMQ UNAVAILABLE: apt-get failed (see $log)"
# The package starts a system-wide service where an init system runs; the tests use their own.
if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server > /dev/null 2>&1 || true
fi
exit 0
