#!/usr/bin/env bash
# Checks what the local stack needs: Python 3.11+, Java 17+, Maven (first jar fetch), PostgreSQL.
# As root with apt-get (a fresh CI machine), installs what is missing; otherwise says what to install.
#   bash deploy/local/prerequisites.sh
set -euo pipefail

missing=()
have_python() {
  command -v python3 >/dev/null && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'
}
have_java17() {
  command -v java >/dev/null || return 1
  local v; v=$(java -version 2>&1 | awk -F'"' '/version/ {print $2}' | cut -d. -f1)
  [ "${v:-0}" -ge 17 ]
}
have_postgres() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null; }
jar_cache="${COMPLAINTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/complaints-platform}"

have_python || missing+=("python3 (3.11+): apt-get install python3 python3-venv")
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv: apt-get install python3-venv")
have_java17 || missing+=("java 17+: apt-get install openjdk-17-jre-headless")
if ! command -v mvn >/dev/null && ! ls "$jar_cache"/libs-*/.complete >/dev/null 2>&1; then
  missing+=("maven (fetches the Kafka jars once): apt-get install maven")
fi
have_postgres || missing+=("postgresql: apt-get install postgresql")

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "prerequisites: installing what is missing:"
  printf '  - %s\n' "${missing[@]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  pkgs=()
  have_java17 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  have_postgres || pkgs+=(postgresql)
  python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
  [ ${#pkgs[@]} -eq 0 ] || apt-get install -y -qq "${pkgs[@]}" >/dev/null
  exit 0
fi

echo "prerequisites missing (install them, then retry):" >&2
printf '  - %s\n' "${missing[@]}" >&2
exit 1
