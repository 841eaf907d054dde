#!/usr/bin/env python3
"""WebSocket echo server and bounded load client for bench/proxy.sh's WebSocket row (standard
library only, RFC 6455 subset: unfragmented text/binary frames, ping, close).

  ws_echo.py server HOST PORT [PORT...]      echo every message back until SIGTERM
  ws_echo.py client HOST PORT CONNS SECONDS MAX_MESSAGES [PAYLOAD_BYTES]
      CONNS connections, each sending one message and waiting for its echo, over and over, until
      SECONDS have passed or MAX_MESSAGES were echoed in all; prints "msgs/s p99_ms errors msgs".
"""

import asyncio
import base64
import hashlib
import os
import signal
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_PAYLOAD = 1 << 20


def unmask(data, key):
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload, mask_key=None):
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask_key is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask_key is None:
        return head + payload
    return head + mask_key + unmask(payload, mask_key)


async def read_frame(r):
    """(opcode, payload) of the next frame; payloads of masked frames come back unmasked."""
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await r.readexactly(8))
    if n > MAX_PAYLOAD:
        raise ValueError(f"frame of {n} bytes")
    key = await r.readexactly(4) if b1 & 0x80 else None
    payload = await r.readexactly(n)
    return b0 & 0x0F, (unmask(payload, key) if key else payload)


async def read_head(r):
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
    if len(head) > 16384:
        raise ValueError("head too large")
    return head.decode("latin-1")


async def serve_client(r, w):
    try:
        head = await read_head(r)
        key = next(
            (line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key:")),
            None,
        )
        if key is None:
            w.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        w.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        while True:
            op, payload = await read_frame(r)
            if op == 8:
                w.write(frame(8, payload[:2]))
                await w.drain()
                return
            w.write(frame(10 if op == 9 else op, payload))
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.TimeoutError, asyncio.LimitOverrunError):
        pass
    finally:
        w.close()


async def server(host, ports):
    servers = [await asyncio.start_server(serve_client, host, int(p), backlog=1024) for p in ports]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


async def client_conn(host, port, deadline, budget, lat, payload):
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await read_head(r)
    if not head.startswith("HTTP/1.1 101"):
        raise ValueError(f"no upgrade: {head.splitlines()[0] if head else 'nothing'}")
    msg = frame(2, payload, os.urandom(4))
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        t0 = time.perf_counter()
        w.write(msg)
        op, echoed = await asyncio.wait_for(read_frame(r), 10)
        if op != 2 or echoed != payload:
            raise ValueError("echo differs from the message")
        lat.append(time.perf_counter() - t0)
    w.write(frame(8, struct.pack("!H", 1000), os.urandom(4)))
    w.close()


async def client(host, port, conns, seconds, max_msgs, size):
    lat = []
    budget = [max_msgs]
    payload = bytes((i * 7) & 0xFF for i in range(size))
    start = time.monotonic()
    results = await asyncio.gather(
        *(client_conn(host, port, start + seconds, budget, lat, payload) for _ in range(conns)), return_exceptions=True
    )
    elapsed = time.monotonic() - start
    errors = [e for e in results if isinstance(e, BaseException)]
    for e in errors[:3]:
        print(f"ws_echo client: {type(e).__name__}: {e}", file=sys.stderr)
    if not lat:
        raise SystemExit("ws_echo client: no message was echoed")
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)] * 1000
    print(f"{len(lat) / elapsed:.1f} {p99:.3f} {len(errors)} {len(lat)}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "server":
        asyncio.run(server(argv[1], argv[2:]))
    elif len(argv) in (6, 7) and argv[0] == "client":
        host, port, conns, seconds, max_msgs = argv[1], int(argv[2]), int(argv[3]), float(argv[4]), int(argv[5])
        size = int(argv[6]) if len(argv) == 7 else 32
        if not (1 <= conns <= 10000 and 0 < seconds <= 3600 and max_msgs >= 1 and 1 <= size <= MAX_PAYLOAD):
            raise SystemExit("ws_echo client: CONNS 1..10000, SECONDS 0..3600, MAX_MESSAGES >= 1, PAYLOAD 1..1 MiB")
        asyncio.run(client(host, port, conns, seconds, max_msgs, size))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
