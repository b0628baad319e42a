#!/usr/bin/env bash
# Install the Debian packages gridwatch needs, when they are missing.
#   scripts/system-packages.sh run   PostgreSQL 15 + PostGIS 3 (skipped with GRIDWATCH_DATABASE_URL)
#                                    and Node.js + npm for the browser packages
#   scripts/system-packages.sh test  also Chromium, a CJK font and GDAL's command-line tools
# As root it uses apt-get, with passwordless sudo it uses sudo; otherwise it prints the
# command to run and exits 1.
set -euo pipefail

database=(postgresql-15 postgresql-15-postgis-3 postgresql-contrib)
browser=(chromium fonts-wqy-microhei gdal-bin)

case "${1:-run}" in
  run)
    if [ -n "${GRIDWATCH_DATABASE_URL:-}" ]; then wanted=(); else wanted=("${database[@]}"); fi ;;
  test) wanted=("${database[@]}" "${browser[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac
# Debian's python3 needs python3-venv before `python3 -m venv` works.
python3 -c "import ensurepip" 2>/dev/null || wanted+=(python3-venv)
# npm installs the browser packages (package-lock.json). Checked as a command, not as Debian
# packages: a NodeSource nodejs bundles npm and conflicts with Debian's npm package.
command -v npm >/dev/null || wanted+=(nodejs npm)

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "gridwatch needs Debian packages that are not installed. Run:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
