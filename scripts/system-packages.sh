#!/usr/bin/env bash
# Install the Debian packages gridwatch needs, when they are missing.
#   scripts/system-packages.sh run   PostgreSQL 15 + PostGIS 3 + PL/Python with the h3 package
#                                    (skipped with GRIDWATCH_DATABASE_URL) and Node.js + npm for
#                                    the browser packages
#   scripts/system-packages.sh test  also Chromium, a CJK font, GDAL's command-line tools, and the
#                                    production parts the tests run for real: nginx and pgBackRest
# As root it uses apt-get, with passwordless sudo it uses sudo; otherwise it prints the
# command to run and exits 1.
set -euo pipefail

database=(postgresql-15 postgresql-15-postgis-3 postgresql-contrib postgresql-plpython3-15 python3-pip)
browser=(chromium fonts-wqy-microhei gdal-bin)
production=(nginx pgbackrest)

case "${1:-run}" in
  run)
    if [ -n "${GRIDWATCH_DATABASE_URL:-}" ]; then wanted=(); else wanted=("${database[@]}"); fi ;;
  test) wanted=("${database[@]}" "${browser[@]}" "${production[@]}") ;;
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

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    echo "gridwatch needs system packages that are not installed. Run:" >&2
    echo "    sudo $*" >&2
    exit 1
  fi
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The heatmap's H3 functions run in PostgreSQL through PL/Python (sql/functions/tiles.sql), with
# Debian's python3, which needs the same h3 as pyproject.toml. Debian packages no h3, so it goes
# to /usr/local, the place for locally installed packages.
if [[ " ${wanted[*]} " == *" postgresql-plpython3-15 "* ]]; then
  h3_pin=$(grep -o '"h3==[^"]*"' "$(dirname "$0")/../pyproject.toml" | tr -d '"')
  if ! /usr/bin/python3 -c "import h3, sys; sys.exit(h3.__version__ != '${h3_pin#h3==}')" 2>/dev/null; then
    echo "installing ${h3_pin} for the database's PL/Python"
    as_root /usr/bin/python3 -m pip install --quiet --no-deps --break-system-packages --root-user-action=ignore "$h3_pin"
  fi
fi
