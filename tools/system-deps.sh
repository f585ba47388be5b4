#!/usr/bin/env bash
# Installs the Debian tools the tests use (real kernel NAT, captures, tshark, coturn, a browser).
# Tools are looked for on PATH and in the sbin folders, where Debian puts nft, tc and conntrack
# (an ordinary user's PATH leaves them out, yet the rootless lab uses them by absolute path).
# As root with apt-get: installs what is missing. Otherwise: says what is missing and who can fix
# it; the tests that need it are skipped with that reason (and fail under CI=true).
set -u
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have nft               || need+=(nftables)
have tcpdump           || need+=(tcpdump)
have tshark            || need+=(tshark)
have turnserver        || need+=(coturn)
have chromium          || need+=(chromium)
have ip                || need+=(iproute2)
have conntrack         || need+=(conntrack)
have node              || need+=(nodejs)
have unshare           || need+=(util-linux)
have openssl           || need+=(openssl)             # the TURN server's self-signed lab certificate (TURN over TLS)
have natpmpc           || need+=(natpmpc)             # a NAT-PMP client no one here wrote (port mapping tests)
have miniupnpd         || need+=(miniupnpd-nftables)  # a real UPnP/NAT-PMP/PCP daemon, refusing behind CGN
have upnpc             || need+=(miniupnpc)           # a UPnP IGD client no one here wrote (p2plab's IGD responder)
have tayga             || need+=(tayga)               # a user-space NAT64 (IPv6-only alice reaches the IPv4 server, lesson 14)
if [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ]; then
  # CI also runs the suite as an ordinary user, from a venv made with a Python every user can read
  have useradd         || need+=(passwd)
  have runuser         || need+=(util-linux)
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3 python3-venv)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "system-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || {
    echo "system-deps: apt-get install failed for: ${need[*]}" >&2; exit 1; }
elif [ "$(id -u)" = 0 ]; then
  echo "system-deps: missing packages ${need[*]} and no apt-get: install them with this system's package manager." >&2
else
  echo "system-deps: missing packages ${need[*]}. Only an administrator can install them" \
       "(sudo apt-get install ${need[*]}); until then the tests that need them are skipped" \
       "and the course uses the simulator and the recorded world." >&2
fi
exit 0
