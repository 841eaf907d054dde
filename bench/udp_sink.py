#!/usr/bin/env python3
"""UDP syslog sink for bench/proxy.sh's log-format scenario: counts datagrams and keeps the last
one, rewriting FILE (count, then the last line) about twice a second; runs until killed."""
import os
import socket
import sys
import time

host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((host, port))
s.settimeout(0.5)
n, last, written = 0, b"", 0.0
while True:
    try:
        last = s.recv(65535)
        n += 1
    except socket.timeout:
        pass
    now = time.monotonic()
    if now - written >= 0.5:
        with open(out + ".tmp", "w") as f:
            f.write(f"{n}\n{last.decode(errors='replace').rstrip()}\n")
        os.replace(out + ".tmp", out)
        written = now
