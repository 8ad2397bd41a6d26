#!/usr/bin/env bash
# Stops the Postfix and Dovecot that tests/interop/setup.sh started, and only those: each is
# stopped through its own private configuration, or by the pid it recorded in its own folder.
# Keeps the folder (logs, Maildirs) for a look after a failed run; setup.sh makes it anew.
set -uo pipefail
dir=${POSTIE_INTEROP_DIR:-/tmp/postie-interop}
quiet=${1:-}
say() { [ "$quiet" = --quiet ] || echo "interop teardown: $*"; }

rm -f "$dir/interop.json"

stop_pid() { # pidfile
  local pid
  pid=$(tr -dc 0-9 2> /dev/null < "$1") || return
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return
  kill "$pid" 2> /dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || return; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null
}

if [ -f "$dir/postfix/main.cf" ] && [ -x /usr/sbin/postfix ]; then
  /usr/sbin/postfix -c "$dir/postfix" stop > /dev/null 2>&1 && say "postfix stopped"
fi
stop_pid "$dir/queue/pid/master.pid"

if [ -f "$dir/dovecot/dovecot.conf" ] && [ -x /usr/bin/doveadm ]; then
  /usr/bin/doveadm -c "$dir/dovecot/dovecot.conf" stop > /dev/null 2>&1 && say "dovecot stopped"
fi
stop_pid "$dir/dovecot/run/master.pid"
exit 0
