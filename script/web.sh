# The four web servers as throw-away front ends for the tollgate stack
# (sourced, not run: by script/server, and by tests/integration/stack.py
# through `sh -c '. script/web.sh; tg_web_render ...'`, so there is one
# renderer). Each configuration includes the real examples/<server> files,
# as an admin would. Needs $TOP (set by script/lib.sh).
#
#   tg_web_render SERVER DIR PORT AUTHZ RELAY_SOCK   write DIR/<config>
#   tg_web_check SERVER DIR                          the server's own test
#   tg_web_exec SERVER DIR                           exec it in the foreground
#
# SERVER is apache, lighttpd, caddy or nginx. The server listens on
# 127.0.0.1:PORT only and keeps its pid file, logs (DIR/error.log,
# DIR/access.log: paths only, never the query, which can hold a key) and
# runtime files in DIR. AUTHZ is the authorizer's host:port, RELAY_SOCK the
# relay's socket path. Stop it with SIGTERM to the PID tg_web_exec ran as.
# As root, the workers of Apache, lighttpd and nginx run as nobody:nogroup,
# who must be able to reach RELAY_SOCK.
#
# The admin pages: with TG_ADMIN_CGI (the CGI's path) and TG_ADMIN_CONFIG
# (tollgate.conf) set, every server also serves tollgate-admin.cgi at /admin
# and its stylesheet at /admin-static (examples/<server>'s admin part).
# Caddy and nginx reach the CGI through fcgiwrap on DIR/fcgiwrap.sock:
#
#   tg_web_fcgiwrap SERVER      true if SERVER needs fcgiwrap for the CGI
#   tg_web_fcgiwrap_exec DIR    exec fcgiwrap for TG_ADMIN_CGI on that socket
#                               (in the foreground: stop it by its PID)

TG_APACHE_BIN=${TG_APACHE_BIN:-apache2}
TG_APACHE_MODULES=${TG_APACHE_MODULES:-/usr/lib/apache2/modules}
TG_LIGHTTPD_BIN=${TG_LIGHTTPD_BIN:-lighttpd}
TG_CADDY_BIN=${TG_CADDY_BIN:-caddy}
TG_NGINX_BIN=${TG_NGINX_BIN:-nginx}
TG_NGINX_PARAMS=${TG_NGINX_PARAMS:-/etc/nginx/fastcgi_params}
TG_WEB_SERVERS="apache lighttpd caddy nginx"

# tg_web_bin SERVER: the program (for `command -v`).
tg_web_bin() {
    case $1 in
    apache) echo "$TG_APACHE_BIN" ;;
    lighttpd) echo "$TG_LIGHTTPD_BIN" ;;
    caddy) echo "$TG_CADDY_BIN" ;;
    nginx) echo "$TG_NGINX_BIN" ;;
    *)
        echo "unknown web server '$1' (one of: $TG_WEB_SERVERS)" >&2
        return 1
        ;;
    esac
}

tg_web_render() {
    _srv=$1
    _dir=$2
    _port=$3
    _authz=$4
    _relay=$5
    : "${TOP:?tg_web_render: TOP is not set}"
    tg_web_bin "$_srv" >/dev/null || return 1
    mkdir -p "$_dir"
    _root=
    [ "$(id -u)" -eq 0 ] && _root=1
    "tg_web_render_$_srv" "$_dir" "$_port" "${_authz%:*}" "${_authz##*:}" "$_relay"
}

# Debian's apache2.conf needs envvars: a standalone main configuration.
# With TG_ADMIN_CGI (the CGI's path) and TG_ADMIN_CONFIG (tollgate.conf)
# set, the admin pages are served at /admin too.
tg_web_render_apache() {
    _user=
    [ -n "$_root" ] && _user="User nobody
Group nogroup"
    cat >"$1/httpd.conf" <<CONF
# Written by tg_web_render (script/web.sh); edit that instead.
ServerRoot "$1"
DefaultRuntimeDir "$1"
PidFile "$1/httpd.pid"
ErrorLog "$1/error.log"
LogLevel warn
Listen 127.0.0.1:$2
ServerName 127.0.0.1
DocumentRoot "$1"
$_user

LoadModule mpm_event_module $TG_APACHE_MODULES/mod_mpm_event.so
StartServers 2
ThreadsPerChild 64
MaxRequestWorkers 256
ServerLimit 4

# The query string can hold a key (?api_key=): log the path only.
LogFormat "%h %u %t \"%m %U %H\" %>s %B %D" tollgate
CustomLog "$1/access.log" tollgate

Define TOLLGATE_AUTHZ $3:$4
Define TOLLGATE_RELAY $5
${TG_ADMIN_CGI:+Define TOLLGATE_ADMIN_CGI $TG_ADMIN_CGI}
${TG_ADMIN_CGI:+Define TOLLGATE_ADMIN_STATIC $TOP/admin-cgi/static}
${TG_ADMIN_CGI:+Define TOLLGATE_CONFIG $TG_ADMIN_CONFIG}
Include "$TOP/examples/apache/modules.conf"

<VirtualHost 127.0.0.1:$2>
    ServerName 127.0.0.1
    Include "$TOP/examples/apache/tollgate.conf"
</VirtualHost>
CONF
}

tg_web_render_lighttpd() {
    _user=
    mkdir -p "$1/www"
    _admin=
    [ -n "${TG_ADMIN_CGI:-}" ] && _admin="
var.tollgate_admin_cgi = \"$TG_ADMIN_CGI\"
var.tollgate_admin_static = \"$TOP/admin-cgi/static\"
var.tollgate_config = \"$TG_ADMIN_CONFIG\"
include \"$TOP/examples/lighttpd/admin.conf\""
    if [ -n "$_root" ]; then
        _user='server.username = "nobody"
server.groupname = "nogroup"'
        # lighttpd opens its logs after dropping to that user.
        chown nobody:nogroup "$1"
    fi
    cat >"$1/lighttpd.conf" <<CONF
# Written by tg_web_render (script/web.sh); edit that instead.
server.document-root = "$1/www"
server.bind = "127.0.0.1"
server.port = $2
server.pid-file = "$1/lighttpd.pid"
server.errorlog = "$1/error.log"
server.upload-dirs = ( "$1" )
server.max-connections = 1024
$_user
server.modules = ( "mod_accesslog" )
# The query string can hold a key (?api_key=): log the path only.
accesslog.filename = "$1/access.log"
accesslog.format = "%h %u %t \"%m %U %H\" %>s %b %D"

var.tollgate_authz_host = "$3"
var.tollgate_authz_port = $4
var.tollgate_relay = "$5"
include "$TOP/examples/lighttpd/tollgate.conf"
$_admin
CONF
}

# admin off: every instance would want localhost:2019. No access log: Caddy's
# records the query string.
tg_web_render_caddy() {
    _admin=
    [ -n "${TG_ADMIN_CGI:-}" ] &&
        _admin="import $TOP/examples/caddy/admin.caddy $TG_ADMIN_CGI $TOP/admin-cgi/static $TG_ADMIN_CONFIG $1/fcgiwrap.sock"
    cat >"$1/Caddyfile" <<CONF
# Written by tg_web_render (script/web.sh); edit that instead.
{
	admin off
	auto_https off
	log {
		output file $1/error.log
		level WARN
	}
	# As examples/caddy/Caddyfile: deadlines for slow clients.
	servers {
		timeouts {
			read_header 10s
			read_body 60s
		}
	}
}
http://:$2 {
	bind 127.0.0.1
	import $TOP/examples/caddy/tollgate.caddy $3:$4 $5
	$_admin
}
CONF
}

tg_web_render_nginx() {
    _user=
    [ -n "$_root" ] && _user="user nobody nogroup;"
    mkdir -p "$1/tmp"
    chmod 1777 "$1/tmp"
    cp "$TG_NGINX_PARAMS" "$1/fastcgi_params"
    _admin=
    [ -n "${TG_ADMIN_CGI:-}" ] && _admin="
        set \$tollgate_admin_cgi $TG_ADMIN_CGI;
        set \$tollgate_admin_static $TOP/admin-cgi/static;
        set \$tollgate_config $TG_ADMIN_CONFIG;
        set \$tollgate_fcgiwrap unix:$1/fcgiwrap.sock;
        include $TOP/examples/nginx/admin.conf;"
    sed -e "s|127\.0\.0\.1:9001|$3:$4|" -e "s|unix:/run/tollgate/relay\.sock|unix:$5|" \
        "$TOP/examples/nginx/upstreams.conf" >"$1/upstreams.conf"
    cat >"$1/nginx.conf" <<CONF
# Written by tg_web_render (script/web.sh); edit that instead.
$_user
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
    # The query string can hold a key (?api_key=): log the path only.
    log_format tollgate '\$remote_addr \$remote_user [\$time_local] "\$request_method \$uri" \$status \$bytes_sent \$request_time';
    access_log $1/access.log tollgate;
    client_body_temp_path $1/tmp/body;
    fastcgi_temp_path $1/tmp/fastcgi;
    proxy_temp_path $1/tmp/proxy;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;

    include $1/upstreams.conf;   # examples/nginx/upstreams.conf, addresses filled in
    server {
        listen 127.0.0.1:$2;
        server_name 127.0.0.1;
        include $TOP/examples/nginx/tollgate.conf;$_admin
    }
}
CONF
}

tg_web_fcgiwrap() {
    case $1 in
    caddy | nginx) return 0 ;;
    *) return 1 ;;
    esac
}

# One process (with -c N, its N children would outlive a SIGTERM to its PID),
# restricted to the one program. As root, the web servers'
# workers run as nobody: tg_web_fcgiwrap_ready makes the socket theirs too.
tg_web_fcgiwrap_exec() {
    : "${TG_ADMIN_CGI:?tg_web_fcgiwrap_exec: TG_ADMIN_CGI is not set}"
    rm -f "$1/fcgiwrap.sock"
    exec fcgiwrap -p "$TG_ADMIN_CGI" -s "unix:$1/fcgiwrap.sock"
}

# tg_web_fcgiwrap_ready DIR: true once fcgiwrap's socket is there (and
# open to every user).
tg_web_fcgiwrap_ready() {
    [ -S "$1/fcgiwrap.sock" ] && chmod 666 "$1/fcgiwrap.sock"
}

# tg_web_check SERVER DIR: the server's configuration test (says why on
# failure).
tg_web_check() {
    case $1 in
    apache) "$TG_APACHE_BIN" -f "$2/httpd.conf" -t ;;
    lighttpd) "$TG_LIGHTTPD_BIN" -tt -f "$2/lighttpd.conf" ;;
    caddy) tg_web_caddy_env "$2" "$TG_CADDY_BIN" validate --config "$2/Caddyfile" --adapter caddyfile ;;
    nginx) "$TG_NGINX_BIN" -p "$2" -c "$2/nginx.conf" -e "$2/error.log" -t ;;
    *) tg_web_bin "$1" ;;
    esac
}

# Caddy keeps autosave.json and its data under XDG dirs and $HOME: the
# instance's own directory.
tg_web_caddy_env() {
    _d=$1
    shift
    XDG_CONFIG_HOME=$_d XDG_DATA_HOME=$_d HOME=$_d "$@"
}

# tg_web_exec SERVER DIR: replaces the shell with the server, in the
# foreground, so the caller's PID for it is the server's.
tg_web_exec() {
    case $1 in
    apache) exec "$TG_APACHE_BIN" -f "$2/httpd.conf" -DFOREGROUND ;;
    lighttpd) exec "$TG_LIGHTTPD_BIN" -D -f "$2/lighttpd.conf" ;;
    caddy)
        XDG_CONFIG_HOME=$2 XDG_DATA_HOME=$2 HOME=$2 \
            exec "$TG_CADDY_BIN" run --config "$2/Caddyfile" --adapter caddyfile
        ;;
    nginx) exec "$TG_NGINX_BIN" -p "$2" -c "$2/nginx.conf" -e "$2/error.log" -g 'daemon off;' ;;
    *) tg_web_bin "$1" ;;
    esac
}
