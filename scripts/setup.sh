#!/usr/bin/env bash
# Create (or reuse) .venv and install deepmf into it, with torch pinned by constraints.txt.
#   scripts/setup.sh        the library and its command line
#   scripts/setup.sh dev    plus test tools, the HTTP server, and Chromium for the browser test
# Re-running is cheap: it reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
spec="."
[ "$extra" = dev ] && spec=".[dev,serve,tune,tensorboard]"
stamp=".venv/.deepmf-installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${extra:-core}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing deepmf${extra:+ ($extra)} into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$spec" >&2
  touch "$stamp"
fi
if [ "$extra" = dev ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null \
   && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's chromium for the browser test" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/dev/null 2>&1 || echo "setup: chromium could not be installed; the browser test will skip" >&2
fi
