# Sourced by scripts/test: make sure PostgreSQL and Redis answer, starting them if needed.
# Servers that are already running are used as they are; servers this script starts are
# private (own port, own data under .services/) and stopped again on exit.

SERVICES_DIR="$(pwd)/.services"
STARTED_PIDS=()

tcp_open() { # host port
  "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  until tcp_open "$1" "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

stop_started_services() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if [ -n "${PRIVATE_PGDATA:-}" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PRIVATE_PGDATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PRIVATE_PGDATA"
  fi
}

ensure_redis() {
  if [ -n "${FUZZORCH_TEST_REDIS_URL:-}" ]; then return 0; fi
  if tcp_open 127.0.0.1 6379; then
    export FUZZORCH_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not running on 127.0.0.1:6379 and redis-server is not installed:" >&2
    echo "  apt-get install redis-server   (or set FUZZORCH_TEST_REDIS_URL)" >&2
    return 1
  fi
  local port dir
  port="$(free_port)"
  dir="$SERVICES_DIR/redis-$port"
  mkdir -p "$dir"
  echo "== starting a private Redis on 127.0.0.1:$port" >&2
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no >/dev/null 2>&1 &
  STARTED_PIDS+=("$!")
  wait_for_port 127.0.0.1 "$port" 20 || { echo "Redis did not start: see $dir/redis.log" >&2; return 1; }
  export FUZZORCH_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

ensure_postgres() {
  if [ -n "${FUZZORCH_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  if tcp_open 127.0.0.1 5432; then
    export FUZZORCH_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    return 0
  fi
  # The machine's own cluster, stopped: start it the way the machine does.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    if [ -n "$version" ]; then
      echo "== starting the PostgreSQL $version cluster" >&2
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
      if wait_for_port 127.0.0.1 5432 30; then
        export FUZZORCH_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        return 0
      fi
    fi
  fi
  # No cluster: make a private, throw-away one (PostgreSQL refuses to run as root).
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$PG_BIN" ] || ! id postgres >/dev/null 2>&1; then
    echo "PostgreSQL is not running on 127.0.0.1:5432 and is not installed:" >&2
    echo "  apt-get install postgresql   (or set FUZZORCH_TEST_POSTGRES_URL)" >&2
    return 1
  fi
  local port
  port="$(free_port)"
  PRIVATE_PGDATA="$(mktemp -d /tmp/fuzzorch-pg.XXXXXX)"
  chown postgres "$PRIVATE_PGDATA"
  echo "== starting a private PostgreSQL on 127.0.0.1:$port" >&2
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PRIVATE_PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PRIVATE_PGDATA" -l "$PRIVATE_PGDATA/log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PRIVATE_PGDATA" start >/dev/null
  wait_for_port 127.0.0.1 "$port" 30 || { echo "PostgreSQL did not start" >&2; return 1; }
  export FUZZORCH_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

ensure_bubblewrap() {
  # The sandbox isolates harnesses with bubblewrap (PID and network namespaces, read-only
  # mounts). Debian packages it; as root we install it, otherwise we say how.
  if command -v bwrap >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing bubblewrap (apt-get)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >&2
    return 0
  fi
  echo "bubblewrap is not installed: apt-get install bubblewrap" >&2
  return 1
}

ensure_chromium() {
  # The web UI test drives Debian's chromium through Playwright (browser downloads by test
  # tools fail here). As root we install it; otherwise we say how.
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (apt-get)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    return 0
  fi
  echo "chromium is not installed: apt-get install chromium" >&2
  return 1
}
