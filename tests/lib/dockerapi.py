#!/usr/bin/env python3
"""GET PATH from the Docker Engine API on its unix socket and print the
body as it came (no client in between reshaping it): for recording
fixtures. With --at-connect, waits for the next network connect event
and prints PATH's answer the moment it came, PATH's {id} and {net}
replaced by the container's and the network's ids (what the daemon asks
at a connect, before the container starts).

  dockerapi.py [--at-connect] PATH [SOCKET]   (SOCKET: /var/run/docker.sock)
"""
import http.client
import json
import socket
import sys
import urllib.parse


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def get(sock, path):
    c = UnixConnection(sock)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"{path}: {r.status} {body.decode(errors='replace').strip()}")
    return body


def at_connect(sock, path):
    filters = urllib.parse.quote(json.dumps({"type": ["network"], "event": ["connect"]}))
    c = UnixConnection(sock)
    version = path.split("/")[1]  # PATH starts /vX.Y/
    c.request("GET", f"/{version}/events?filters={filters}")
    r = c.getresponse()
    print("ready", file=sys.stderr, flush=True)
    ev = json.loads(r.readline())
    cid = ev["Actor"]["Attributes"]["container"]
    return get(sock, path.replace("{id}", cid).replace("{net}", ev["Actor"]["ID"]))


def main():
    args = sys.argv[1:]
    wait = args[0] == "--at-connect"
    if wait:
        args = args[1:]
    sock = args[1] if len(args) > 1 else "/var/run/docker.sock"
    body = at_connect(sock, args[0]) if wait else get(sock, args[0])
    sys.stdout.buffer.write(body)


if __name__ == "__main__":
    main()
