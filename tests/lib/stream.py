#!/usr/bin/env python3
"""A long-lived flow for revocation tests: sends a line every 50 ms to
an echo server over one TCP connection or one UDP socket (one conntrack
entry), and keeps in OUT how many echoes came back. Stops after 60 s,
or when the connection fails.

  stream.py tcp|udp HOST PORT OUT
"""
import os
import socket
import sys
import time


def main():
    kind, host, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(0.05)
    s.connect((host, port))
    n = 0
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            s.send(b"tick\n")
            if s.recv(64):
                n += 1
        except socket.timeout:
            pass
        except OSError:
            break
        with open(out + ".tmp", "w") as f:
            f.write("%d\n" % n)
        # a rename: a reader never sees a file half written
        os.replace(out + ".tmp", out)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
