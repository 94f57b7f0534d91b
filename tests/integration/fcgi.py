"""A minimal FastCGI client (standard library only), to talk to
tollgate-authz and tollgate-relay directly, as a web server would, but with
parameters of the test's choosing (forged tickets, missing authorizer ...).

    r = fcgi.request("/path/relay.sock", params, stdin=b"...")
    r.status, r.headers (list of (name, value)), r.body, r.stderr
"""
import socket
import struct

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7
RESPONDER, AUTHORIZER = 1, 2
REQUEST_ID = 1


def _record(rtype, content=b""):
    out = b""
    # A record holds at most 65535 bytes of content.
    for i in range(0, max(len(content), 1), 65535):
        part = content[i:i + 65535]
        out += struct.pack("!BBHHBx", VERSION, rtype, REQUEST_ID, len(part), 0) + part
    return out


def _length(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def encode_params(params):
    out = b""
    for name, value in params.items():
        n = name.encode() if isinstance(name, str) else name
        v = value.encode() if isinstance(value, str) else value
        out += _length(len(n)) + _length(len(v)) + n + v
    return out


class Response:
    def __init__(self, raw_stdout, stderr, app_status):
        self.raw = raw_stdout
        self.stderr = stderr
        self.app_status = app_status
        head, sep, body = raw_stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = raw_stdout.partition(b"\n\n")
        self.headers = []
        for line in head.decode("latin-1").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers.append((k.strip(), v.strip()))
        self.body = body
        status = self.header("Status")
        self.status = int(status.split()[0]) if status else (200 if sep else None)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<fcgi.Response %s %r %r>" % (self.status, self.headers, self.body[:300])


def connect(address, timeout=30):
    """address: a unix socket path, or "host:port"."""
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
    return s


def request(address, params, stdin=b"", role=RESPONDER, send_stdin=True, timeout=30):
    """One request; returns a Response once the application ended it.
    role AUTHORIZER with send_stdin=False is what Apache's mod_authnz_fcgi
    sends (no FCGI_STDIN record at all)."""
    s = connect(address, timeout)
    try:
        msg = _record(BEGIN_REQUEST, struct.pack("!HB5x", role, 0))
        msg += _record(PARAMS, encode_params(params)) + _record(PARAMS)
        if send_stdin:
            if stdin:
                msg += _record(STDIN, stdin)
            msg += _record(STDIN)
        s.sendall(msg)
        out, err, app_status = bytearray(), bytearray(), None
        buf = b""
        while app_status is None:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                _v, rtype, _rid, clen, plen = struct.unpack("!BBHHBx", buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                content = buf[8:8 + clen]
                buf = buf[8 + clen + plen:]
                if rtype == STDOUT:
                    out += content
                elif rtype == STDERR:
                    err += content
                elif rtype == END_REQUEST:
                    app_status = struct.unpack("!I", content[:4])[0]
        return Response(bytes(out), bytes(err), app_status)
    finally:
        s.close()
