# fakeplatform.py - what the integration tests' fake platforms (a man in
# the middle in front of the real platform) and raw clients share:
# reading a request, forwarding one, telling when an answer is whole.  A
# test copies it beside its own script in $T_TMP and imports it from
# there.
import socket
import socketserver


def read_req(f):
    """(request line, header lines, body) of the next request on f, or
    None at the end."""
    line = f.readline()
    if not line:
        return None
    hdrs, n = [], 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        hdrs.append(h)
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return line, hdrs, f.read(n) if n else b""


def whole_answer(data):
    """Whether data holds an answer's head and all the body its
    Content-Length announces (none: an empty body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return len(body) >= n


def forward(up, line, hdrs, body):
    """(status, body) of the request sent to the platform on 127.0.0.1
    port up, on a connection of its own."""
    s = socket.create_connection(("127.0.0.1", up))
    hh = [h for h in hdrs
          if not h.lower().startswith((b"connection", b"expect"))]
    s.sendall(line + b"".join(hh) + b"Connection: close\r\n\r\n" + body)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, b = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), b


def requests(f):
    """The requests on f, as read_req gives them, to the end."""
    while True:
        rq = read_req(f)
        if rq is None:
            return
        yield rq


def send(w, st, body=b"", extra=b"", cl=None):
    """An answer with status st, body, the header lines extra and a
    Content-Length of cl (None: the body's)."""
    w.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n"
            % (st, len(body) if cl is None else cl, extra) + body)
    w.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True


def serve(handler):
    """Serves with handler (a StreamRequestHandler class) on 127.0.0.1, on
    a port of the kernel's choosing, printed as "listening on PORT"."""
    srv = Server(("127.0.0.1", 0), handler)
    print("listening on %d" % srv.server_address[1], flush=True)
    srv.serve_forever()
