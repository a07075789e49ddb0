#!/usr/bin/env python3
"""A loopback TCP relay that counts bytes, for measuring what git fetches.

    bench/byteproxy.py LISTEN_PORT TARGET_PORT LOG

Relays 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT and appends one line
per closed connection to LOG: "<down> <up>" (bytes server->client, then
client->server). Counts everything on the wire (protocol, pack, sideband).
"""

import asyncio
import sys


async def pipe(reader, writer, counter, key):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            counter[key] += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    listen, target, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        counter = {"down": 0, "up": 0}
        await asyncio.gather(
            pipe(client_r, server_w, counter, "up"),
            pipe(server_r, client_w, counter, "down"),
        )
        with open(log, "a") as f:
            f.write(f"{counter['down']} {counter['up']}\n")

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
