#!/usr/bin/env python3
"""A Docker Engine API that misbehaves on request, for fault injection.

usage: fake_docker.py SOCKET INSPECT_FILE MODE_FILE

It serves /version, /networks, /containers/json, /containers/ID/json
(the objects of INSPECT_FILE, a `docker inspect` array) and /events over
SOCKET, HTTP/1.1. MODE_FILE holds one word, read at every request and,
for an open event stream, every 20 ms:

  ok            well-formed answers; the event stream stays open, idle
  garbage       the event stream sends a line that is not JSON
  midchunk      the event stream sends half a chunk and closes
  longline      the event stream sends 2 MB without a newline
  inspect-bad   container inspect answers a JSON object of wrong types
  list-500      /containers/json answers HTTP 500
  stall         every request but /version is read and never answered

The happy path is tested against the real dockerd; this is for what a
real one does only when it is broken.
"""
import json
import os
import socketserver
import sys
import time

from fakehttp import read_path

SOCK, INSPECT, MODE = sys.argv[1:4]
CONTAINERS = json.load(open(INSPECT))


def mode():
    try:
        with open(MODE) as f:
            return f.read().strip()
    except OSError:
        return "ok"


class Handler(socketserver.StreamRequestHandler):
    def send(self, status, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode()
        self.wfile.write(
            ("HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
             % (status, ctype, len(data))).encode() + data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def events(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
        self.wfile.flush()
        while True:
            m = mode()
            if m == "garbage":
                self.chunk(b"this is not an event\n")
                with open(MODE, "w") as f:
                    f.write("ok")
            elif m == "midchunk":
                self.wfile.write(b"400\r\n{\"Type\":\"container\",\"Act")
                self.wfile.flush()
                return
            elif m == "longline":
                for _ in range(32):
                    self.chunk(b"x" * 65536)
                time.sleep(1)
                return
            time.sleep(0.02)

    def handle(self):
        try:
            self.serve()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon hung up on what it refused

    def serve(self):
        while True:
            path = read_path(self.rfile)
            if path is None:
                return
            m = mode()
            if m == "stall" and not path.startswith("/version"):
                time.sleep(3600)
                return
            if path.startswith("/version"):
                self.send(200, {"ApiVersion": "1.41", "Version": "fake"})
            elif path.startswith("/events"):
                self.events()
                return
            elif path.startswith("/networks"):
                self.send(200, [])
            elif path.startswith("/containers/json"):
                if m == "list-500":
                    self.send(500, {"message": "broken"})
                else:
                    self.send(200, [{"Id": c["Id"]} for c in CONTAINERS])
            elif path.startswith("/containers/"):
                cid = path.split("/")[2]
                c = next((c for c in CONTAINERS if c["Id"] == cid), None)
                if c is None:
                    self.send(404, {"message": "no such container"})
                elif m == "inspect-bad":
                    self.send(200, {"Id": cid, "Name": 7, "Config": []})
                else:
                    self.send(200, c)
            else:
                self.send(404, {"message": "not here"})
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCK):
    os.unlink(SOCK)
Server(SOCK, Handler).serve_forever()
