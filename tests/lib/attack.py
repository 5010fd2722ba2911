#!/usr/bin/env python3
"""What a container that holds only CAP_NET_RAW can send: raw frames out
of its eth0, forged as tests/integration/identity.sh asks. Every frame
carries MARK in its payload (or in the packet an ICMP error quotes), so
that tests/lib/sniff.py on the victim's side can tell it arrived.

  attack.py KIND MARK key=value...
    spoof4 / spoof6   UDP to dst:5000 and a SYN to dst:5432, from src
                      (another container's address), from our own MAC;
                      with mac=SRCMAC, from that MAC too
    vlan0 / vlan5     a UDP datagram and a SYN from our own address,
                      in an 802.1Q tag (VID 0: a priority tag)
    arp               ARP request to dst from "src is at our MAC"
    ra                a router advertisement for 2001:db8:1::/64
    na                "src (IPv6) is at our MAC", unsolicited, override
                      (MARK is not sent: pass the target and our MAC as
                      hex: to the sniffer)
    icmperr           port unreachable to dst, quoting dst's packet of
                      its connection to peer (dport/sport given)
    nd_data           a neighbour solicitation to dst carrying MARK
"""
import sys

from scapy.all import (ARP, ICMP, IP, UDP, TCP, Dot1Q, Ether, IPv6,
                       ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                       ICMPv6NDOptDstLLAddr, ICMPv6NDOptPrefixInfo,
                       ICMPv6NDOptSrcLLAddr, Raw, conf, get_if_hwaddr,
                       sendp)

conf.verb = 0
IFACE = "eth0"


def nd_opt(mark):
    """MARK in an ND option of a type no one knows (ignored, as RFC 4861
    asks), so that the message stays valid."""
    n = (len(mark) + 2 + 7) // 8
    return bytes([200, n]) + mark + bytes(n * 8 - 2 - len(mark))


def main():
    kind, mark = sys.argv[1], sys.argv[2].encode()
    a = dict(x.split("=", 1) for x in sys.argv[3:])
    me = get_if_hwaddr(IFACE)
    dmac = a.get("dmac", "ff:ff:ff:ff:ff:ff")
    smac = a.get("mac", me)
    frames = []
    if kind in ("spoof4", "spoof6"):
        ip = IP if kind == "spoof4" else IPv6
        l3 = ip(src=a["src"], dst=a["dst"])
        frames = [
            Ether(src=smac, dst=dmac) / l3 / UDP(sport=4444, dport=5000) / Raw(mark),
            Ether(src=smac, dst=dmac) / l3 / TCP(sport=4445, dport=5432, flags="S") / Raw(mark),
        ]
    elif kind in ("vlan0", "vlan5"):
        vid = 0 if kind == "vlan0" else 5
        l3 = IP(src=a["src"], dst=a["dst"])
        frames = [
            Ether(src=me, dst=dmac) / Dot1Q(vlan=vid) / l3 / UDP(sport=4444, dport=5000) / Raw(mark),
            Ether(src=me, dst=dmac) / Dot1Q(vlan=vid) / l3 / TCP(sport=4445, dport=5432, flags="S") / Raw(mark),
        ]
    elif kind == "arp":
        frames = [Ether(src=me, dst=dmac) / ARP(op=1, hwsrc=me, psrc=a["src"], hwdst="00:00:00:00:00:00", pdst=a["dst"]) / Raw(mark)]
    elif kind == "ra":
        frames = [Ether(src=me, dst="33:33:00:00:00:01") / IPv6(src=a["src"], dst="ff02::1", hlim=255) /
                  ICMPv6ND_RA(routerlifetime=1800) /
                  ICMPv6NDOptPrefixInfo(prefix="2001:db8:1::", prefixlen=64, L=1, A=1,
                                        validlifetime=3600, preferredlifetime=3600) /
                  ICMPv6NDOptSrcLLAddr(lladdr=me) / Raw(nd_opt(mark))]
    elif kind == "na":
        # the marker is the target and our MAC in its option (hex:...):
        # as long as an honest advertisement, nothing added
        frames = [Ether(src=me, dst=dmac) / IPv6(src=a["own"], dst=a["dst"], hlim=255) /
                  ICMPv6ND_NA(tgt=a["src"], R=0, S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=me)]
    elif kind == "nd_data":
        frames = [Ether(src=me, dst=dmac) / IPv6(src=a["own"], dst=a["dst"], hlim=255) /
                  ICMPv6ND_NS(tgt=a["dst"]) / ICMPv6NDOptSrcLLAddr(lladdr=me) / Raw(nd_opt(mark * 8))]
    elif kind == "icmperr":
        quoted = IP(src=a["dst"], dst=a["peer"]) / TCP(sport=int(a["sport"]), dport=int(a["dport"]), flags="PA") / Raw(mark)
        frames = [Ether(src=me, dst=dmac) / IP(src=a["own"], dst=a["dst"]) / ICMP(type=3, code=3) / bytes(quoted)]
    else:
        sys.exit("attack.py: unknown kind " + kind)
    for _ in range(3):
        sendp(frames, iface=IFACE)


if __name__ == "__main__":
    main()
