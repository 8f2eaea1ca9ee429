#!/usr/bin/env bash
# kazoo's own test suite (the kazoo/tests package of the installed kazoo wheel) against zkops.
#
# kazoo's harness starts a three-server cluster with `java ... QuorumPeerMain zoo.cfg`; the
# `java` in tests/compat stands in for it and runs zkops on the same zoo.cfg and myid. The
# run ends with pytest's "N passed, M failed" line; extra arguments go to pytest
# (e.g. -k test_lock, -x). Usage: tests/compat/run_kazoo_suite.sh [pytest args]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# kazoo's harness needs pyOpenSSL's older X509 API, which pins an older cryptography:
# its own virtualenv keeps that away from the project's .venv
venv="${ZKOPS_KAZOO_VENV:-$root/.venv-kazoo-suite}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$py" -m pip install -q --upgrade pip >/dev/null
  "$py" -m pip install -q -e "$root" "kazoo==2.11.*" pytest pytest-timeout "pyopenssl<24.3" "cryptography<44" pyjks objgraph gevent eventlet pure-sasl
  touch "$stamp"
fi
suite="$("$py" -c 'import kazoo.tests, os; print(os.path.dirname(kazoo.tests.__file__))')"
export ZKOPS_PYTHON="$py"
export PATH="$root/tests/compat:$PATH"
export ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-3.8.0}"
export ZOOKEEPER_CLASSPATH="${ZOOKEEPER_CLASSPATH:-unused-by-zkops}"  # the harness insists on one
export ZOOKEEPER_PORT_OFFSET="${ZOOKEEPER_PORT_OFFSET:-23000}"
work="$(mktemp -d /tmp/zkops-kazoo-suite.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$work"
status=0
"$py" -m pytest -p no:cacheprovider -c /dev/null --rootdir "$work" -q -rs "$suite" "$@" || status=$?
exit "$status"
