#!/usr/bin/env python3
"""asyncio_echo: the Python peers of the echo benchmark (issue 6): an asyncio Protocol that writes
back whatever data_received() gets, on the default event loop or, with --uvloop, on uvloop's.
One thread.  Usage: asyncio_echo.py PORT [--uvloop]"""
import asyncio
import socket
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"asyncio_echo listening on {port} ({type(loop).__module__})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--uvloop"):
        sys.exit("usage: asyncio_echo.py PORT [--uvloop]")
    if len(sys.argv) == 3:
        import uvloop

        uvloop.install()
    asyncio.run(main(int(sys.argv[1])))
