#!/usr/bin/env bash
# `make test`'s second half under CI=true as root: the suite as the people who use the course.
#
#   1. root            - the whole suite (run by make before this script; its JUnit report is $1)
#   2. an ordinary user - created here (useradd), with a plain user PATH (no sbin): the whole suite
#                        (what only root can have is marked needs_root and deselected), the real lab
#                        required (P2PLAB_WORLD=netns: every real-lab cell runs rootless, in a user
#                        namespace, or fails)
#   3. no namespaces   - the same user in a private mount namespace where unshare, nsenter and ip
#                        are replaced by a program that fails as a locked-down container does: every
#                        notebook on the recordings, the doctor and `punch --world netns` saying why
#
# The user's virtualenv is built by root (root has the package index settings) from a Python that
# every user can read, from a copy of this checkout that the user owns. Prints how many tests ran
# as each user and exits non-zero if any run failed or skipped anything.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT_REPORT=${1:-}
LEARNER=${P2PLAB_CI_USER:-p2plab-learner}
work=$(mktemp -d /tmp/p2plab-users.XXXXXX)
chmod 755 "$work"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

say() { printf '\n=== %s ===\n' "$*"; }

say "ordinary user $LEARNER: environment"
id "$LEARNER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$LEARNER" || exit 1
home=$(getent passwd "$LEARNER" | cut -d: -f6)
mkdir -p "$work/repo" "$work/reports"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | grep -zv '^\.venv/' | tar --null -T - -cf - | tar -C "$work/repo" -xf -
else
  tar --exclude=./.venv -cf - . | tar -C "$work/repo" -xf -
fi
py=""
for candidate in /usr/bin/python3 /usr/local/bin/python3; do
  if [ -x "$candidate" ] && runuser -u "$LEARNER" -- "$candidate" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    py=$candidate; break
  fi
done
[ -n "$py" ] || { echo "ci-as-users: no Python 3.11+ that $LEARNER can run (install python3 and python3-venv)"; exit 1; }
"$py" -m venv "$work/venv" || exit 1
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$work/repo[test]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$work/venv/bin/python" -c 'import p2plab' || { echo "ci-as-users: installing the course for $LEARNER failed"; exit 1; }
chown -R "$LEARNER" "$work/repo" "$work/reports"

as_learner() {  # a login-like environment: the user's own HOME and a PATH without sbin
  runuser -u "$LEARNER" -- env -i HOME="$home" USER="$LEARNER" LOGNAME="$LEARNER" LANG=C.UTF-8 \
    PATH=/usr/local/bin:/usr/bin:/bin CI=true "$@"
}

# lesson 14's NAT64 (tayga) opens /dev/net/tun inside the user's lab: make it what the kernel's tun/tap
# documentation suggests and desktop Linux has (0666; creating a device still needs CAP_NET_ADMIN)
[ -c /dev/net/tun ] && chmod 0666 /dev/net/tun

status=0
say "ordinary user $LEARNER: the whole suite, every real-lab cell in the rootless lab"
(cd "$work/repo" && as_learner P2PLAB_WORLD=netns P2PLAB_EXPECT_NETNS=yes "$work/venv/bin/python" -m pytest \
   -p no:cacheprovider --junitxml="$work/reports/learner.xml") || status=1

say "no network namespaces (unshare, nsenter and ip refuse): every notebook on the recordings"
cat > "$work/refuse" <<'EOF'
#!/bin/sh
echo "$(basename "$0"): unshare failed: Operation not permitted" >&2
exit 1
EOF
chmod 755 "$work/refuse"
masks=""
for tool in unshare nsenter ip; do
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -e "$dir/$tool" ] && masks="$masks $(readlink -f "$dir/$tool")"
  done
done
masks=$(printf '%s\n' $masks | sort -u | tr '\n' ' ')
export work home LEARNER masks
unshare --mount --propagation private -- bash -c '
  for path in $masks; do mount --bind "$work/refuse" "$path" || exit 1; done
  cd "$work/repo" && runuser -u "$LEARNER" -- env -i HOME="$home" USER="$LEARNER" LOGNAME="$LEARNER" \
    LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin CI=true P2PLAB_EXPECT_NETNS=no \
    "$work/venv/bin/python" -m pytest -p no:cacheprovider --junitxml="$work/reports/no-netns.xml" \
    course solutions tests/test_doctor.py tests/test_no_lab_machine.py
' || status=1

say "tests run as each user"
python3 - "$ROOT_REPORT" "$work/reports/learner.xml" "$work/reports/no-netns.xml" "$LEARNER" <<'EOF' || status=1
import sys
import xml.etree.ElementTree as ET

labels = ["root", f"ordinary user ({sys.argv[4]}, rootless lab)", "no namespaces (recordings)"]
totals = dict(passed=0, failed=0, skipped=0)
bad = False
for label, path in zip(labels, sys.argv[1:4]):
    if not path:
        print(f"{label:45s} no report")
        continue
    try:
        suites = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"{label:45s} no report ({exc})")
        bad = True
        continue
    suites = suites.findall("testsuite") if suites.tag == "testsuites" else [suites]
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = n["failures"] + n["errors"]
    passed = n["tests"] - failed - n["skipped"]
    bad |= failed > 0 or n["skipped"] > 0 or n["tests"] == 0
    totals["passed"] += passed
    totals["failed"] += failed
    totals["skipped"] += n["skipped"]
    print(f"{label:45s} {passed} passed, {failed} failed, {n['skipped']} skipped")
print(f"all users: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
sys.exit(1 if bad else 0)
EOF
exit $status
