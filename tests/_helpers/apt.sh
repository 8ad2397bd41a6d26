# Sourced by the setup scripts that install Debian packages for tests (tests/transport/
# proxy_setup.sh, tests/outbox/redis_setup.sh). Defines:
#
#   apt_install LOG PACKAGE...  installs the packages, running `apt-get update` first when the
#                               package lists are missing or the install fails; everything apt
#                               does shares a budget of about 2 minutes from the first call;
#                               output goes to LOG. Returns non-zero when it failed.
#   apt_usable                  true when running as root with apt-get.

apt_started=${apt_started:-$(date +%s)}

apt_usable() {
  [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null
}

apt_get() { # log, args...
  local log=$1
  shift
  local left=$((apt_started + 120 - $(date +%s)))
  [ "$left" -gt 5 ] || return 124
  timeout "$left" apt-get -o DPkg::Lock::Timeout=30 "$@" >> "$log" 2>&1
}

apt_install() { # log, packages...
  local log=$1
  shift
  export DEBIAN_FRONTEND=noninteractive
  local install=(install -y -qq --no-install-recommends
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@")
  if compgen -G "/var/lib/apt/lists/*_Packages*" > /dev/null && apt_get "$log" "${install[@]}"; then
    return 0
  fi
  apt_get "$log" update -qq && apt_get "$log" "${install[@]}"
}
