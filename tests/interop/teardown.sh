#!/usr/bin/env bash
# Stops the Postfix and Dovecot that tests/interop/setup.sh started, and only those: each is
# stopped through its own private configuration, or by the pid it recorded in its own folder.
# Keeps the folder (logs, Maildirs) for a look after a failed run; setup.sh makes it anew.
set -uo pipefail
dir=${POSTIE_INTEROP_DIR:-/tmp/postie-interop}
quiet=${1:-}
say() { [ "$quiet" = --quiet ] || echo "interop teardown: $*"; }

rm -f "$dir/interop.json"

stop_pid() { # pidfile; succeeds when it stopped a running process
  local pid
  pid=$(tr -dc 0-9 2> /dev/null < "$1") || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 1
  kill "$pid" 2> /dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2> /dev/null
  return 0
}

if [ -f "$dir/postfix/main.cf" ] && [ -x /usr/sbin/postfix ]; then
  /usr/sbin/postfix -c "$dir/postfix" stop > /dev/null 2>&1 && say "postfix stopped"
fi
stop_pid "$dir/queue/pid/master.pid"

# SIGTERM to Dovecot's master stops it and its children at once (doveadm stop waits ~3 s).
stop_pid "$dir/dovecot/run/master.pid" && say "dovecot stopped"
exit 0
