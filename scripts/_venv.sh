# Sourced by scripts/*: make sure .venv exists and has this checkout installed.
# Re-installs only when pyproject.toml changed since the last install.

fuzzorch_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "fuzzorch needs Python 3.11 or newer (apt-get install python3 python3-venv)" >&2
  return 1
}

ensure_venv() {
  local extras="${1:-}"
  local root stamp wanted python
  root="$(pwd)"
  stamp="$root/.venv/.fuzzorch-install"
  wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
  if [ ! -x "$root/.venv/bin/python" ]; then
    python="$(fuzzorch_python)" || return 1
    echo "== creating .venv with $python" >&2
    "$python" -m venv "$root/.venv"
    "$root/.venv/bin/python" -m pip install --quiet --upgrade pip >&2
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "== installing fuzzorch${extras:+[$extras]} into .venv" >&2
    "$root/.venv/bin/python" -m pip install --quiet -e ".${extras:+[$extras]}" >&2
    echo "$wanted" >"$stamp"
  fi
}
