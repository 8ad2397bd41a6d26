#!/usr/bin/env bash
# Makes the real proxies for tests/transport/proxy_servers_test.ts available: dante-server
# (SOCKS5) and tinyproxy (HTTP CONNECT) from Debian packages, Dovecot's LMTP service
# (dovecot-lmtpd, for tests/interop/lmtp_dovecot_test.ts), and, for dante's username method
# (RFC 1929; dante checks the system's password database), a system user "postie-socks" without
# a home or a login shell. The tests start their own instances from a private folder on loopback
# ports; nothing is started here. When something cannot be had (not root, no apt), it says why
# and exits 0: the tests then skip with a printed reason. Safe to run again.
set -uo pipefail
source "$(dirname "$0")/../_helpers/apt.sh"

say() { echo "proxy setup: $*"; }

if ! [ -x /usr/sbin/danted ] || ! [ -x /usr/bin/tinyproxy ] || ! [ -x /usr/lib/dovecot/lmtp ]; then
  if ! apt_usable; then
    say "PROXIES UNAVAILABLE: dante-server, tinyproxy or dovecot-lmtpd is missing, and apt-get as root is not at hand"
    exit 0
  fi
  say "installing dante-server, tinyproxy and dovecot-lmtpd from Debian packages"
  log=/tmp/postie-proxy-apt.log
  apt_install "$log" dante-server tinyproxy dovecot-core dovecot-lmtpd ||
    say "PROXIES UNAVAILABLE: apt-get failed (see $log)"
  # The packages start system-wide services where an init system runs; the tests use their own.
  if command -v systemctl > /dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now danted tinyproxy > /dev/null 2>&1 || true
  fi
fi

if [ "$(id -u)" = 0 ] && ! id postie-socks > /dev/null 2>&1; then
  if useradd --system --no-create-home --shell /usr/sbin/nologin postie-socks &&
    echo 'postie-socks:Socks-pass7' | chpasswd; then
    say "created the system user postie-socks for dante's username method"
  else
    say "cannot create the user postie-socks: the SOCKS5 username tests will skip"
  fi
fi
exit 0
