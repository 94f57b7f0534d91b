# Apache httpd as a throw-away front end for the tollgate stack (sourced, not
# run: by script/server, and by tests/integration/stack.py through
# `sh -c '. script/apache.sh; tg_apache_render ...'`, so there is one
# renderer). Needs $TOP (set by script/lib.sh) to find examples/apache.

TG_APACHE_BIN=${TG_APACHE_BIN:-apache2}
TG_APACHE_MODULES=${TG_APACHE_MODULES:-/usr/lib/apache2/modules}

# tg_apache_render DIR PORT AUTHZ RELAY_SOCK: writes DIR/httpd.conf, a
# standalone main configuration (Debian's apache2.conf needs envvars) that
# listens on 127.0.0.1:PORT, keeps its pid file, logs and runtime files in
# DIR, Defines TOLLGATE_AUTHZ=AUTHZ (host:port) and TOLLGATE_RELAY=RELAY_SOCK,
# and includes examples/apache/modules.conf at server level and
# examples/apache/tollgate.conf inside a <VirtualHost>, as an admin would.
# With TG_ADMIN_CGI (the CGI's path) and TG_ADMIN_CONFIG (tollgate.conf)
# set, the admin pages are served at /admin too.
# Run it with `$TG_APACHE_BIN -f DIR/httpd.conf -DFOREGROUND`; stop it with
# SIGTERM. As root, the workers run as nobody:nogroup, who must be able to
# reach RELAY_SOCK.
tg_apache_render() {
    _dir=$1
    _port=$2
    _authz=$3
    _relay=$4
    : "${TOP:?tg_apache_render: TOP is not set}"
    mkdir -p "$_dir"
    _user=
    if [ "$(id -u)" -eq 0 ]; then
        _user="User nobody
Group nogroup"
    fi
    cat >"$_dir/httpd.conf" <<CONF
# Written by tg_apache_render (script/apache.sh); edit that instead.
ServerRoot "$_dir"
DefaultRuntimeDir "$_dir"
PidFile "$_dir/httpd.pid"
ErrorLog "$_dir/error.log"
LogLevel warn
Listen 127.0.0.1:$_port
ServerName 127.0.0.1
DocumentRoot "$_dir"
$_user

LoadModule mpm_event_module $TG_APACHE_MODULES/mod_mpm_event.so
StartServers 2
ThreadsPerChild 64
MaxRequestWorkers 256
ServerLimit 4

# The query string can hold a key (?api_key=): log the path only.
LogFormat "%h %u %t \"%m %U %H\" %>s %B %D" tollgate
CustomLog "$_dir/access.log" tollgate

Define TOLLGATE_AUTHZ $_authz
Define TOLLGATE_RELAY $_relay
${TG_ADMIN_CGI:+Define TOLLGATE_ADMIN_CGI $TG_ADMIN_CGI}
${TG_ADMIN_CGI:+Define TOLLGATE_ADMIN_STATIC $TOP/admin-cgi/static}
${TG_ADMIN_CGI:+Define TOLLGATE_CONFIG $TG_ADMIN_CONFIG}
Include "$TOP/examples/apache/modules.conf"

<VirtualHost 127.0.0.1:$_port>
    ServerName 127.0.0.1
    Include "$TOP/examples/apache/tollgate.conf"
</VirtualHost>
CONF
}

# tg_apache_check DIR: apache2 -t on DIR/httpd.conf (prints why on failure).
tg_apache_check() {
    "$TG_APACHE_BIN" -f "$1/httpd.conf" -t
}
