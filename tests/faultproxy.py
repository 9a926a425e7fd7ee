"""A tiny fault-injecting HTTP proxy for storage tests, on 127.0.0.1 only.

It forwards each connection to an upstream port (the SeaweedFS S3 port) one request per
connection (``Connection: close`` is forced both ways), and can be told to answer the next
N requests itself with a fault instead:

- ``"slowdown"``: 503 with an S3 ``SlowDown`` error body
- ``"internal"``: 500 with an S3 ``InternalError`` error body
- ``"drop"``: close the connection without an answer
- ``"stall"``: read the request, answer nothing until the client gives up (timeout tests)
- ``"corrupt"``: forward, but flip the first byte of the response body (integrity tests)
- ``"slow"``: forward after ``delay`` seconds (a slow server, not a dead one)
- ``"skewed"``: 403 ``RequestTimeTooSkewed`` whose ``Date`` is ``skew`` seconds from now;
  ``"skewed-signature"``: the same clock, but a 403 ``SignatureDoesNotMatch``
- ``"strip-checksums"``: forward, but drop every ``x-amz-checksum-*`` header of the answer
  (a server, or a gateway in front of one, that gives no checksum of its own)

``fail_matching(pattern, fault)`` answers every request whose ``METHOD /path?query`` matches
a regular expression with a fault until ``clear_rules()`` (a bucket policy that denies some
keys, say: ``"denied"`` is a 403 AccessDenied). ``before_request`` (a callable given the
request number and line) runs before each request is handled, e.g. to stop the server.

Bounded: every socket has a timeout, threads are daemons, and the proxy stops by itself
after ``lifetime`` seconds if nobody stops it first (the fixture stops it at test end).
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time

FAULTS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError",
                 "We encountered an internal error. Please try again."),
    "denied": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "skewed": (403, "Forbidden", "RequestTimeTooSkewed",
               "The difference between the request time and the server's time is too large."),
    "skewed-signature": (403, "Forbidden", "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature "
                         "you provided."),
}
FORWARDED = ("corrupt", "slow", "strip-checksums")
HEAD_LIMIT = 64 * 1024


class FaultProxy:
    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1", lifetime: float = 120.0,
                 timeout: float = 10.0):
        self.upstream = (host, upstream_port)
        self.timeout = timeout
        self.delay = 1.5  # of a "slow" answer
        self.skew = 3600.0  # how far the "skewed" answers' Date is from now (seconds)
        self.requests: list[str] = []  # "METHOD /path -> fault|forwarded", for assertions
        self.headers: list[dict[str, str]] = []  # each request's headers (lowercase names)
        self._faults: list[str | None] = []
        self._rules: list[list] = []  # [pattern, fault, answers left or None]
        self.before_request = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, 0), Handler)
        self.port = self._server.server_address[1]
        self.endpoint_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._deadline = threading.Timer(lifetime, self.stop)
        self._deadline.daemon = True
        self._deadline.start()

    def fail_next(self, count: int, fault: str = "slowdown", *, after: int = 0) -> None:
        """Forward ``after`` requests, then answer ``count`` with ``fault`` instead."""
        if fault not in (*FAULTS, "drop", "stall", *FORWARDED):
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([None] * after + [fault] * count)

    def fail_matching(self, pattern: str, fault: str = "denied", *,
                      times: int | None = None) -> None:
        """Answer every request whose ``METHOD target`` matches ``pattern`` with ``fault``
        (only the next ``times`` such requests, if given)."""
        if fault not in (*FAULTS, *FORWARDED):
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._rules.append([re.compile(pattern), fault, times])

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def count(self, pattern: str) -> int:
        """How many requests seen so far match ``pattern`` (``METHOD target -> outcome``)."""
        return sum(1 for line in list(self.requests) if re.search(pattern, line))

    def pending_faults(self) -> int:
        with self._lock:
            return sum(1 for fault in self._faults if fault)

    def stop(self) -> None:
        self._deadline.cancel()
        self._server.shutdown()
        self._server.server_close()

    # -- one connection ------------------------------------------------------------

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(self.timeout)
        head = _read_head(client)
        if head is None:
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        request = request_line.rsplit(" ", 1)[0]
        if self.before_request is not None:
            self.before_request(len(self.requests) + 1, request)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault is None:
                for rule in self._rules:
                    if rule[0].search(request) and rule[2] != 0:
                        fault = rule[1]
                        if rule[2] is not None:
                            rule[2] -= 1
                        break
        self.requests.append(f"{request} -> {fault or 'forwarded'}")
        self.headers.append(_headers(head))
        if fault == "stall":
            _drain(client, 1 << 62, self.timeout)  # until the client hangs up or timeout
        if fault in ("drop", "stall"):
            client.close()
            return
        if fault in FAULTS:
            self._answer(client, head, request_line, fault)
            return
        if fault == "slow":
            time.sleep(self.delay)
        self._forward(client, _force_close(head), corrupt=fault == "corrupt",
                      strip=fault == "strip-checksums")

    def _answer(self, client: socket.socket, head: bytes, request_line: str,
                fault: str) -> None:
        status, reason, code, message = FAULTS[fault]
        headers = _headers(head)
        if "100-continue" not in headers.get("expect", ""):
            _drain(client, int(headers.get("content-length", "0") or 0))
        body = b"" if request_line.startswith("HEAD ") else (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
        length = len(body) if body else 0
        date = ""
        if fault.startswith("skewed"):
            from email.utils import formatdate

            date = f"Date: {formatdate(time.time() + self.skew, usegmt=True)}\r\n"
        client.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                       f"{date}Content-Length: {length}\r\nConnection: close\r\n\r\n"
                       .encode() + body)
        client.close()

    def _forward(self, client: socket.socket, head: bytes, corrupt: bool = False,
                 strip: bool = False) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=self.timeout)
        except OSError:
            client.close()
            return
        upstream.sendall(head)
        pump = threading.Thread(target=_pipe, args=(client, upstream), daemon=True)
        pump.start()
        _pipe(upstream, client, corrupt, strip)
        pump.join(self.timeout)
        for sock in (client, upstream):
            sock.close()


def _read_head(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except OSError:
            return None
        if not chunk or len(data) > HEAD_LIMIT:
            return None
        data += chunk
    return data  # may already hold the start of the body; forwarded as is


def _headers(head: bytes) -> dict[str, str]:
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip().lower()
            for k, _, v in (line.partition(":") for line in lines)}


def _force_close(head: bytes) -> bytes:
    top, rest = head.split(b"\r\n\r\n", 1)
    lines = [line for line in top.split(b"\r\n")
             if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest


def _drain(sock: socket.socket, length: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while length > 0 and time.monotonic() < deadline:
        try:
            chunk = sock.recv(min(length, 65536))
        except OSError:
            return
        if not chunk:
            return
        length -= len(chunk)


def _pipe(source: socket.socket, target: socket.socket, corrupt: bool = False,
          strip: bool = False) -> None:
    seen = b""
    try:
        if strip:  # hold the answer's head back until it is whole, then filter it
            held = b""
            while b"\r\n\r\n" not in held and (chunk := source.recv(65536)):
                held += chunk
            top, _, rest = held.partition(b"\r\n\r\n")
            lines = [line for line in top.split(b"\r\n")
                     if not line.lower().startswith(b"x-amz-checksum-")]
            target.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + rest)
        while chunk := source.recv(65536):
            if corrupt:  # flip the first body byte, once
                seen += chunk
                end = seen.find(b"\r\n\r\n")
                if end >= 0 and len(seen) > end + 4:
                    at = end + 4 - (len(seen) - len(chunk))
                    chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1:]
                    corrupt = False
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
