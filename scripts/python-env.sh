# Sourced by the install and test scripts: make sure ./.venv exists with a current pip.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
      # Debian ships venv separately.
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
}
