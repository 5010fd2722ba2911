#!/usr/bin/env python3
"""A DNS server the tests control: answers A and AAAA questions over UDP
from a zone file read anew for every question, so that a test changes
the answers (or breaks the server) by rewriting the file.

usage: fake_dns.py ADDRESS PORT ZONEFILE

Zone file lines: "NAME TTL ADDRESS" (IPv4 or IPv6), and "mode MODE" where
MODE is ok (default), servfail (every answer SERVFAIL) or drop (no answer
at all: the client times out). A name with no record of the type asked
gets an empty answer, an unknown name NXDOMAIN. Every question is
appended to ZONEFILE.log as "NAME TYPE".
"""
import ipaddress
import socket
import struct
import sys


def read_zone(path):
    mode, recs = "ok", {}
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 2 and w[0] == "mode":
                    mode = w[1]
                elif len(w) == 3:
                    recs.setdefault(w[0].lower().rstrip("."), []).append(
                        (int(w[1]), ipaddress.ip_address(w[2])))
    except OSError:
        pass
    return mode, recs


def qname(msg, off):
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels), off
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def answer(msg, path):
    ident, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    name, off = qname(msg, 12)
    qtype, _ = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    with open(path + ".log", "a") as log:
        log.write("%s %s\n" % (name, {1: "A", 28: "AAAA"}.get(qtype, qtype)))
    mode, recs = read_zone(path)
    if mode == "drop":
        return None
    rcode, rrs = 0, []
    if mode == "servfail":
        rcode = 2
    elif name.lower() not in recs:
        rcode = 3
    else:
        for ttl, addr in recs[name.lower()]:
            if (qtype == 1 and addr.version == 4) or (qtype == 28 and addr.version == 6):
                rrs.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl,
                                       len(addr.packed)) + addr.packed)
    head = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode,
                       1, len(rrs), 0, 0)
    return head + question + b"".join(rrs)


def main():
    addr, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            out = answer(msg, path)
        except (IndexError, struct.error, UnicodeError):
            out = None
        if out:
            s.sendto(out, peer)


if __name__ == "__main__":
    main()
