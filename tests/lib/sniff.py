#!/usr/bin/env python3
"""Counts the frames that reach IFACE carrying MARK (or the bytes of
hex:HEX), and prints the count: what a victim container received of an
attack (run in its namespace; no filter of its own stands between).
Writes "ready" to READY once its socket is open, so that the attack is
not sent before, and stops once STOP exists (or after a minute).

  sniff.py IFACE MARK READY STOP
"""
import os
import socket
import sys
import time

ETH_P_ALL = 0x0003


def main():
    iface, mark, ready, stop = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]
    if mark.startswith(b"hex:"):  # bytes the frame holds anyway
        mark = bytes.fromhex(mark[4:].decode())
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.1)
    with open(ready, "w") as f:
        f.write("ready\n")
    end = time.monotonic() + 60
    n = 0
    while time.monotonic() < end:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            if os.path.exists(stop):
                break
            continue
        if addr[2] != socket.PACKET_OUTGOING and mark in data:
            n += 1
    print(n)


if __name__ == "__main__":
    main()
