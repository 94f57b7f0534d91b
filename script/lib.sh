# Shared by script/server and script/test (sourced, not run): building,
# free ports, and a private PostgreSQL run as an unprivileged user.

TOP=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

# build DIR [configure args...]: an out-of-tree build, configured once.
tg_build() {
    dir=$1
    shift
    if [ ! -x "$TOP/configure" ] || [ "$TOP/configure.ac" -nt "$TOP/configure" ]; then
        (cd "$TOP" && autoreconf -fi >/dev/null 2>&1) || {
            echo "autoreconf failed; run it by hand to see why" >&2
            return 1
        }
    fi
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        (cd "$dir" && "$TOP/configure" -q "$@") || return 1
    fi
    make -C "$dir" -s -j"$(nproc)" >/dev/null || make -C "$dir" -j1
}

# A TCP port free on 127.0.0.1 right now.
tg_freeport() {
    "$TOP/tests/integration/freeport"
}

# PostgreSQL refuses to run as root: use the system user `tollgate`.
tg_pg_user() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
        return
    fi
    if ! id tollgate >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin tollgate
    fi
    echo tollgate
}

tg_as_pg() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    else
        runuser -u "$(tg_pg_user)" -- "$@"
    fi
}

# pg_start DATADIR PORT: initdb on first use, then start with the socket in
# DATADIR. fsync stays on unless TG_PG_FAST=1 (tests: speed over safety).
tg_pg_start() {
    data=$1
    port=$2
    user=$(tg_pg_user)
    if [ ! -s "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        chown "$user" "$data"
        chmod 700 "$data"
        tg_as_pg "$PGBIN/initdb" -D "$data" -A trust -U tollgate \
            --encoding=UTF8 --no-locale ${TG_PG_FAST:+--no-sync} >"$data.initdb.log" 2>&1 || {
            cat "$data.initdb.log" >&2
            return 1
        }
    fi
    opts="-p $port -k $data -c listen_addresses=127.0.0.1"
    # fsync=off only: commits still reach the OS at once, so the fault tests
    # can crash PostgreSQL (stop -m immediate) without losing any.
    [ "${TG_PG_FAST:-}" = 1 ] && opts="$opts -c fsync=off -c full_page_writes=off"
    tg_as_pg "$PGBIN/pg_ctl" -D "$data" -w -t 60 -l "$data/postgres.log" -o "$opts" start >/dev/null || {
        tail -n 20 "$data/postgres.log" >&2
        return 1
    }
    tg_as_pg "$PGBIN/psql" -h "$data" -p "$port" -U tollgate -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = 'tollgate'" | grep -q 1 ||
        tg_as_pg "$PGBIN/createdb" -h "$data" -p "$port" -U tollgate tollgate
}

tg_pg_stop() {
    data=$1
    [ -f "$data/postmaster.pid" ] || return 0
    tg_as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# A random secret, readable by its owner only.
tg_make_secret() {
    file=$1
    [ -s "$file" ] && return 0
    (umask 077 && head -c 48 /dev/urandom | base64 -w0 >"$file")
}
