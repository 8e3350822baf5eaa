#!/usr/bin/env bash
# Installs kmock (pinned), an in-memory Kubernetes API emulator from PyPI, into a venv at
# target/kmock, where server/tests/common/kmock.rs looks for it to run
# server/tests/common/kmock_cluster.py for the Kubernetes executor's tests
# (server/tests/kubernetes_engine.rs). No Kubernetes API server, kubelet or image can be had
# on our machines, so the tests play the controller and kubelet against this emulator.
# Idempotent: does nothing when that version is there.
set -euo pipefail
cd "$(dirname "$0")/.."
version="0.8"
dir="target/kmock"
python="$dir/bin/python"
if [ -x "$python" ] && "$python" -c "import kmock, sys; sys.exit(kmock.__version__ != '$version')" 2>/dev/null; then
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 is missing: install Python 3.11+ (apt-get install python3 python3-venv)" >&2; exit 1; }
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "kmock==$version"
"$python" -c "import kmock; print('kmock', kmock.__version__)"
