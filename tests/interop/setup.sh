#!/usr/bin/env bash
# Starts a real MTA for tests/interop: Postfix with Dovecot SASL, from Debian packages, on
# 127.0.0.1 only, from a private folder ($POSTIE_INTEROP_DIR, default /tmp/postie-interop).
# Nothing under /etc is changed, and nothing listens beyond loopback.
#
#   starttls port    STARTTLS offered; AUTH offered only after it (smtpd_tls_auth_only)
#   implicit port    TLS from the first byte (smtpd_tls_wrappermode), AUTH offered
#   submission port  TLS required before MAIL, AUTH required before RCPT
#
# All three offer PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8, DSN and a SIZE limit, take at most 5
# recipients per transaction, and deliver mail for postie.test into Maildirs under
# $POSTIE_INTEROP_DIR/mail. Dovecot (auth only, no mail protocols) checks passwords from a
# passwd-file (plain text, so that every mechanism works) and offers PLAIN, LOGIN, CRAM-MD5,
# DIGEST-MD5, SCRAM-SHA-1 and SCRAM-SHA-256.
#
# It also installs Debian's python3-dkim when missing (for tests/interop/dkim_test.ts; without it
# only those tests skip).
#
# On success it writes $POSTIE_INTEROP_DIR/interop.json, which tests/interop reads. When the
# MTA cannot be had (not root, no apt, no network to Debian's mirror), it says why, leaves no
# interop.json and exits 0: the interop tests then skip loudly. Safe to run again: a previous
# instance is stopped and its folder made anew.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
certs="$here/../fixtures/certs"
dir=${POSTIE_INTEROP_DIR:-/tmp/postie-interop}
started=$(date +%s)

say() { echo "interop setup: $*"; }
give_up() {
  say "INTEROP UNAVAILABLE: $*"
  [ -d "$dir" ] && bash "$here/teardown.sh" --quiet
  say "the interop tests will be skipped (each prints INTEROP SKIPPED)"
  rm -f "$dir/interop.json"
  exit 0
}

# --- packages ---------------------------------------------------------------------------------
have_packages() { [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/dovecot ]; }
# Everything apt does shares one budget, so that setup never takes more than ~3 minutes.
apt_deadline=$((started + 170))
apt_get() { # args...
  local left=$((apt_deadline - $(date +%s)))
  [ "$left" -gt 5 ] || return 124
  timeout "$left" apt-get -o DPkg::Lock::Timeout=30 "$@" >> "$dir.apt.log" 2>&1
}
if ! have_packages; then
  [ "$(id -u)" = 0 ] || give_up "postfix and dovecot are not installed and this is not root"
  command -v apt-get > /dev/null || give_up "postfix and dovecot are not installed and there is no apt-get"
  say "installing postfix and dovecot-core from Debian packages"
  # "No configuration": the package writes no /etc/postfix/main.cf and starts nothing.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
    2> /dev/null
  export DEBIAN_FRONTEND=noninteractive
  install_packages() {
    apt_get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      postfix dovecot-core
  }
  mkdir -p "$(dirname "$dir")"
  : > "$dir.apt.log"
  # Without package lists (a fresh machine) install cannot work: update first.
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" > /dev/null || ! install_packages; then
    apt_get update -qq || give_up "apt-get update failed or took too long (see $dir.apt.log)"
    install_packages || give_up "apt-get install postfix dovecot-core failed or took too long (see $dir.apt.log)"
  fi
  have_packages || give_up "postfix or dovecot is still missing after apt-get install"
fi

# Debian's python3-dkim (dkimpy) verifies the DKIM signatures of delivered mail
# (tests/interop/dkim_test.ts). Without it only those tests skip, loudly: no give_up here.
dkim_python=/usr/bin/python3
dkimpy_missing=""
have_dkimpy() { "$dkim_python" -c "import dkim" > /dev/null 2>&1; }
if ! have_dkimpy; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    dkimpy_missing="python3-dkim is not installed, and this is not root with apt-get"
  else
    say "installing python3-dkim from Debian packages"
    mkdir -p "$(dirname "$dir")"
    touch "$dir.apt.log"
    export DEBIAN_FRONTEND=noninteractive
    install_dkimpy() { apt_get install -y -qq --no-install-recommends python3-dkim; }
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" > /dev/null || ! install_dkimpy; then
      apt_get update -qq && install_dkimpy
    fi
    have_dkimpy ||
      dkimpy_missing="apt-get install python3-dkim failed or took too long (see $dir.apt.log)"
  fi
  [ -z "$dkimpy_missing" ] || say "DKIM INTEROP UNAVAILABLE: $dkimpy_missing"
fi
[ "$(id -u)" = 0 ] || give_up "Postfix needs root to start (it drops to its postfix user)"
id postfix > /dev/null 2>&1 || give_up "the postfix user is missing"

# --- a fresh private folder -------------------------------------------------------------------
bash "$here/teardown.sh" --quiet
rm -rf "$dir"
mkdir -p "$dir"/{postfix,queue,data,mail,dovecot/run,dovecot/state,tls}
chmod 755 "$dir"
chown postfix:postfix "$dir/data" "$dir/mail"

port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
taken=""
pick_port() { # preferred; prints a free port not picked before
  local port=$1
  while ! port_free "$port" || [[ " $taken " == *" $port "* ]]; do
    port=$((20000 + RANDOM % 20000))
  done
  echo "$port"
}
starttls_port=$(pick_port 12525) && taken="$taken $starttls_port"
implicit_port=$(pick_port 12465) && taken="$taken $implicit_port"
submission_port=$(pick_port 12587) && taken="$taken $submission_port"

uid=$(id -u postfix)
gid=$(id -g postfix)
user=alice@postie.test
password='Wonder-land 42!'
size_limit=1000000

# TLS material, readable by root only (Postfix loads it before dropping privileges).
if ! install -m 644 "$certs/server.pem" "$dir/tls/server.pem" ||
  ! install -m 600 "$certs/server.key" "$dir/tls/server.key"; then
  give_up "cannot copy the test certificate from $certs"
fi

# --- Dovecot: SASL only -----------------------------------------------------------------------
printf '%s:{PLAIN}%s\n' "$user" "$password" > "$dir/dovecot/users"
printf 'bob@postie.test:{PLAIN}builder\n' >> "$dir/dovecot/users"
chmod 640 "$dir/dovecot/users"
chgrp dovecot "$dir/dovecot/users"
cat > "$dir/dovecot/dovecot.conf" << EOF
# postie interop: Dovecot as Postfix's SASL server only; no IMAP/POP3, no listeners.
instance_name = postie-interop
base_dir = $dir/dovecot/run
state_dir = $dir/dovecot/state
protocols =
ssl = no
log_path = $dir/dovecot/dovecot.log
auth_mechanisms = plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256
# Postfix hands over AUTH only after TLS (smtpd_tls_auth_only); Dovecot sees a local socket.
disable_plaintext_auth = no
auth_verbose = yes
# Failed logins are answered at once (the default waits 2 s), so the wrong-password test is quick.
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/dovecot/users
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$dir/mail/%d/%n
}
service auth {
  unix_listener $dir/dovecot/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
# No growing delay after failed logins from 127.0.0.1 (Dovecot's auth penalty, 2 s to 15 s).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
EOF

# --- Postfix ----------------------------------------------------------------------------------
cat > "$dir/postfix/vmailbox" << EOF
$user postie.test/alice/
bob@postie.test postie.test/bob/
sender@postie.test postie.test/sender/
josé@postie.test postie.test/jose/
EOF
# Twelve more mailboxes, for a message to more recipients than smtpd_recipient_limit allows.
for i in $(seq -w 1 12); do echo "list$i@postie.test postie.test/list$i/"; done \
  >> "$dir/postfix/vmailbox"

cat > "$dir/postfix/main.cf" << EOF
# postie interop: a private Postfix instance on 127.0.0.1 (see tests/interop/setup.sh).
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.postie.test
mydomain = postie.test
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
default_transport = error:interop instance delivers nowhere but postie.test
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
biff = no
smtputf8_enable = yes
message_size_limit = $size_limit
mailbox_size_limit = 0
virtual_mailbox_limit = 0
smtpd_banner = \$myhostname ESMTP postie-interop
virtual_mailbox_domains = postie.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/postfix/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = $uid
smtpd_tls_cert_file = $dir/tls/server.pem
smtpd_tls_key_file = $dir/tls/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $dir/dovecot/auth
smtpd_sasl_authenticated_header = yes
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
# Low, so that a message to 12 recipients needs three transactions ("452 4.5.3 Error: too many
# recipients" after the fifth RCPT of each).
smtpd_recipient_limit = 5
# The tests make many quick connections and send junk on purpose.
smtpd_client_connection_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
anvil_rate_time_unit = 60s
delay_warning_time = 0
EOF

cat > "$dir/postfix/master.cf" << EOF
# postie interop: three SMTP ports on 127.0.0.1, no chroot, no port 25.
127.0.0.1:$starttls_port inet n - n - - smtpd
127.0.0.1:$implicit_port inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
127.0.0.1:$submission_port inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# --- start ------------------------------------------------------------------------------------
/usr/sbin/dovecot -c "$dir/dovecot/dovecot.conf" > "$dir/dovecot-start.log" 2>&1 ||
  give_up "dovecot did not start: $(tail -3 "$dir/dovecot-start.log" "$dir/dovecot/dovecot.log" 2> /dev/null)"
# The postfix command prints its errors only to a terminal: give it one when script(1) is here.
postfix_cmd() { # log command
  local log=$1
  shift
  if command -v script > /dev/null; then
    script -qec "/usr/sbin/postfix -c $dir/postfix $*" /dev/null > "$log" 2>&1
  else
    /usr/sbin/postfix -c "$dir/postfix" "$@" > "$log" 2>&1
  fi
}
postfix_cmd "$dir/postfix-check.log" check ||
  give_up "postfix check failed: $(tail -5 "$dir/postfix-check.log")"
postfix_cmd "$dir/postfix-start.log" start ||
  give_up "postfix did not start: $(tail -5 "$dir/postfix-start.log")"

# Wait until every port answers and the SASL socket exists.
for _ in $(seq 1 100); do
  ready=1
  for port in "$starttls_port" "$implicit_port" "$submission_port"; do
    port_free "$port" && ready=0
  done
  [ -S "$dir/dovecot/auth" ] || ready=0
  [ "$ready" = 1 ] && break
  sleep 0.1
done
[ "$ready" = 1 ] || give_up "Postfix or Dovecot is not answering (see $dir/postfix.log)"

cat > "$dir/interop.json" << EOF
{
  "hostname": "localhost",
  "ports": { "starttls": $starttls_port, "implicit": $implicit_port, "submission": $submission_port },
  "user": "$user",
  "password": "$password",
  "domain": "postie.test",
  "maildir": "$dir/mail/postie.test",
  "messageSizeLimit": $size_limit,
  "recipientLimit": 5,
  "postfixLog": "$dir/postfix.log",
  "dkimPython": $([ -z "$dkimpy_missing" ] && echo "\"$dkim_python\"" || echo null),
  "dkimpyMissing": "$dkimpy_missing",
  "postfixVersion": "$(/usr/sbin/postconf -c "$dir/postfix" -h mail_version 2> /dev/null)",
  "dovecotVersion": "$(/usr/sbin/dovecot --version 2> /dev/null | cut -d' ' -f1)"
}
EOF
say "Postfix $(/usr/sbin/postconf -c "$dir/postfix" -h mail_version) with Dovecot SASL on" \
  "127.0.0.1: starttls $starttls_port, implicit $implicit_port, submission $submission_port" \
  "($(($(date +%s) - started)) s; state in $dir)"
