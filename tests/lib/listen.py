#!/usr/bin/env python3
"""TCP listeners for probes: accept and close, on every ADDRESS PORT pair
given (usage: listen.py ADDR PORT [ADDR PORT]...). An address that is not
there yet (a bridge being created) is retried for a few seconds."""
import selectors
import socket
import sys
import time


def bind(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for _ in range(50):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
            s.listen(64)
            return s
        except OSError:
            s.close()
            time.sleep(0.1)
    sys.exit("listen.py: cannot listen on %s port %d" % (addr, port))


def main():
    sel = selectors.DefaultSelector()
    args = sys.argv[1:]
    for i in range(0, len(args), 2):
        sel.register(bind(args[i], int(args[i + 1])), selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            conn, _ = key.fileobj.accept()
            conn.close()


if __name__ == "__main__":
    main()
