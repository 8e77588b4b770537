#!/usr/bin/env bash
# The main job, end to end, on an embedded legacy instance (no Docker needed):
# install the tool, create a Coolify v3 3.12.32 instance whose key is derived from its install
# date, prove the key is weak, plan and run the upgrade to the latest release in versions.json
# (which rolls the key through the 3.12.33 required stop), then show the backup and the result.
#
#   scripts/demo.sh [DATA_DIR]      (default: a new temporary directory)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
if [ ! -x "$venv/bin/coolify-migrate" ]; then
  echo "== installing coolify-migrate into $venv (pip's output: $venv/install.log)"
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install -e "$repo" >"$venv/install.log" 2>&1; then
    tail -20 "$venv/install.log" >&2
    echo "error: pip could not install coolify-migrate (hint: see $venv/install.log)" >&2
    exit 1
  fi
fi
cm="$venv/bin/coolify-migrate"
dir=${1:-$(mktemp -d)/coolify}
run() { echo; echo "\$ coolify-migrate $*"; "$cm" "$@"; }

echo "== a legacy instance: installed 2023-07-18 10:09:02.980 UTC by the old installer"
run demo --data-dir "$dir" --installed-at 2023-07-18T10:09:02.980Z
run status --data-dir "$dir" --runtime none
echo; echo "== the proof: the key is recomputed from the install time (exit 6 means weak)"
set +e
"$cm" secrets audit --data-dir "$dir" --runtime none; code=$?
set -e
echo "(secrets audit exited $code)"
run plan --data-dir "$dir" --manifest "$repo/versions.json" --runtime none
run upgrade --data-dir "$dir" --manifest "$repo/versions.json" --runtime none
run backup list --data-dir "$dir" --runtime none
run secrets verify --data-dir "$dir" --runtime none
run status --data-dir "$dir" --runtime none
echo; echo "== done: the instance is in $dir"
echo "   the command is $cm; to call it as coolify-migrate in this shell:"
echo "   export PATH=\"$venv/bin:\$PATH\""
