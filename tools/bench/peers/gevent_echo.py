#!/usr/bin/env python3
"""gevent_echo: the gevent peer of the echo benchmark (issue 6): a StreamServer, one greenlet per
connection doing recv / sendall until the peer closes.  One thread.  Usage: gevent_echo.py PORT"""
import socket
import sys

from gevent.server import StreamServer


def echo(sock, _address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv, sendall = sock.recv, sock.sendall
    try:
        while True:
            data = recv(16384)
            if not data:
                break
            sendall(data)
    except OSError:
        pass  # a reset: the connection is done
    finally:
        sock.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gevent_echo.py PORT")
    port = int(sys.argv[1])
    server = StreamServer(("127.0.0.1", port), echo, backlog=4096)
    print(f"gevent_echo listening on {port}", flush=True)
    server.serve_forever()
