#!/usr/bin/env bash
# Installs what a fresh machine lacks for the tests (Debian packages through apt-get, which
# needs root; rustfmt and clippy through rustup). Run by scripts/test.sh; does nothing when
# everything is there.
set -euo pipefail

# apt_install [APT-OPTION...] -- PACKAGE...: installs the packages (root only; else says what
# to install and fails).
apt_install() {
  local options=()
  while [ "$1" != -- ]; do options+=("$1"); shift; done
  shift
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: $* — install them (Debian: apt-get install ${options[*]} $*), then run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${options[@]}" "$@"
}

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v nvim >/dev/null || need_apt+=(neovim)   # the real LSP client of server/tests/lsp.rs
# node and npm: the real Claude Code CLI and the cache tests' small npm project.
command -v npm >/dev/null || need_apt+=(nodejs npm)
# python3 with venv: kmock, the Kubernetes API emulator of the engine's tests (install-kmock.sh).
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3 python3-venv)
[ ${#need_apt[@]} -eq 0 ] || apt_install -- "${need_apt[@]}"
# A real two-node Slurm cluster (scripts/slurm-cluster.sh) for server/tests/slurm_engine.rs
# and remote_slurm.rs, without recommends (they would add a mail server and more).
need_slurm=()
for program in /usr/sbin/slurmctld:slurmctld /usr/sbin/slurmd:slurmd /usr/bin/sbatch:slurm-client /usr/sbin/munged:munge; do
  [ -x "${program%%:*}" ] || need_slurm+=("${program#*:}")
done
[ ${#need_slurm[@]} -eq 0 ] || apt_install --no-install-recommends -- "${need_slurm[@]}"
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
