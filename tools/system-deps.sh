#!/usr/bin/env bash
# Installs the Debian tools the tests use (real kernel NAT, captures, tshark, coturn, a browser).
# As root with apt-get: installs what is missing. Otherwise: says what is missing; the tests
# that need it are skipped with a reason (and fail under CI=true).
set -u
need=()
command -v nft        >/dev/null 2>&1 || need+=(nftables)
command -v tcpdump    >/dev/null 2>&1 || need+=(tcpdump)
command -v tshark     >/dev/null 2>&1 || need+=(tshark)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v chromium   >/dev/null 2>&1 || need+=(chromium)
command -v ip         >/dev/null 2>&1 || need+=(iproute2)
command -v conntrack  >/dev/null 2>&1 || need+=(conntrack)
command -v node       >/dev/null 2>&1 || need+=(nodejs)
command -v natpmpc    >/dev/null 2>&1 || need+=(natpmpc)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || {
    echo "system-deps: apt-get install failed for: ${need[*]}" >&2; exit 1; }
else
  echo "system-deps: missing ${need[*]} (not root, or no apt-get): the tests that need them are skipped." >&2
fi
exit 0
