#!/usr/bin/env python3
"""A scripted Docker Engine API for bench/daemon.sh: N containers running
on two bridge networks, answered at once, so that what the bench times
is bulkhead's own cost and not Docker's. The objects have the shapes a
real dockerd 20.10 sends (tests/fixtures/docker/20.10), minus MAC
addresses and namespaces: there are no veths to bind here.

usage: scale_docker.py SOCKET N CMD_FILE

It serves /version, /networks, /networks/ID, /containers/json (filtered
by id or not), /containers/ID/json and /events. When a line "starts K"
or "burst K" is written to CMD_FILE, the event stream runs K probe
containers (bench-probe-1...): "starts" one after another, as Docker
does for a lone `docker run` (network connect; start once the connect's
network object was fetched; die and destroy once the start's inspect
was), "burst" all K connects at once, then all starts, then the stops.
It writes "done K" to CMD_FILE.done when the last probe is gone.
"""
import bisect
import hashlib
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
from fakehttp import read_path  # noqa: E402

SOCK, N, CMD = sys.argv[1], int(sys.argv[2]), sys.argv[3]
IMAGE = "bulkhead-test/busybox:latest"


def hexid(s):
    return hashlib.sha256(s.encode()).hexdigest()


NETS = {}
for k in (1, 2):
    name = "bench%d" % k
    NETS[name] = {"Name": name, "Id": hexid(name), "bridge": "bhs%d" % k,
                  "prefix": "10.20%d" % k,
                  # its members' ids sorted and their entries' text, and
                  # the object's text while no member comes or goes: the
                  # answer is joined, not built (building 5,000 entries
                  # took 20 ms, whose work cooled the daemon's caches)
                  "order": [], "entry": {}, "text": None}
BY_NETID = {n["Id"]: n for n in NETS.values()}
CONTAINERS = {}  # id -> (name, net name, address)
lock = threading.Lock()


def add(i, name):
    net = NETS["bench%d" % (i % 2 + 1)]
    k = i // 2 + 2
    addr = "%s.%d.%d" % (net["prefix"], k >> 8, k & 255)
    cid = hexid(name)
    entry = json.dumps({cid: {"Name": name, "EndpointID": hexid("ep" + cid),
                              "MacAddress": "", "IPv4Address": addr + "/16",
                              "IPv6Address": ""}}, separators=(",", ":"))
    with lock:
        CONTAINERS[cid] = (name, net["Name"], addr)
        bisect.insort(net["order"], cid)
        net["entry"][cid] = entry[1:-1].encode()
        net["text"] = None
    return cid


def remove(cid):
    with lock:
        net = NETS[CONTAINERS.pop(cid)[1]]
        del net["order"][bisect.bisect_left(net["order"], cid)]
        del net["entry"][cid]
        net["text"] = None


for i in range(1, N + 1):
    svc = ("web", "app", "db")[i % 3]
    add(i, "bench-%s-%d" % (svc, i))


def endpoint(cid):
    name, net, addr = CONTAINERS[cid]
    return net, {"IPAMConfig": None, "Links": None, "Aliases": None,
                 "NetworkID": NETS[net]["Id"], "EndpointID": hexid("ep" + cid),
                 "Gateway": NETS[net]["prefix"] + ".0.1", "IPAddress": addr,
                 "IPPrefixLen": 16, "IPv6Gateway": "", "GlobalIPv6Address": "",
                 "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def list_entry(cid):
    name, _, _ = CONTAINERS[cid]
    net, ep = endpoint(cid)
    return {"Id": cid, "Names": ["/" + name], "Image": IMAGE, "Command": "sleep",
            "Created": 1796176714, "Ports": [], "Labels": {}, "State": "running",
            "Status": "Up", "HostConfig": {"NetworkMode": net},
            "NetworkSettings": {"Networks": {net: ep}}, "Mounts": []}


def inspect(cid):
    name, _, _ = CONTAINERS[cid]
    net, ep = endpoint(cid)
    return {"Id": cid, "Name": "/" + name,
            "State": {"Status": "running", "Running": True, "Pid": 1},
            "Config": {"Image": IMAGE, "Labels": {}},
            "NetworkSettings": {"SandboxKey": "", "Ports": {},
                                "Networks": {net: ep}}}


def network_text(net):
    """The network object's text (call with lock held). Go's encoding/json
    writes a map's keys sorted, as Docker's answer has them."""
    if net["text"] is None:
        head = {"Name": net["Name"], "Id": net["Id"], "Scope": "local",
                "Driver": "bridge", "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": net["prefix"] + ".0.0/16"}]},
                "Internal": False, "Containers": "@",
                "Options": {"com.docker.network.bridge.name": net["bridge"]},
                "Labels": {}}
        pre, post = json.dumps(head, separators=(",", ":")).split('"@"')
        net["text"] = (pre.encode() + b"{" +
                       b",".join(net["entry"][c] for c in net["order"]) +
                       b"}" + post.encode())
    return net["text"]


def event(typ, action, actor, attrs):
    t = time.time_ns()
    return json.dumps({"Type": typ, "Action": action,
                       "Actor": {"ID": actor, "Attributes": attrs},
                       "scope": "local", "time": t // 10**9,
                       "timeNano": t}).encode() + b"\n"


# what the script waits on: how many times each path was answered (a
# probe's network object after its connect, its inspect after its start)
served = {}
served_cv = threading.Condition()


def mark(path):
    with served_cv:
        served[path] = served.get(path, 0) + 1
        served_cv.notify_all()


def count(path):
    with served_cv:
        return served.get(path, 0)


def wait_served(path, after, timeout=10):
    with served_cv:
        served_cv.wait_for(lambda: served.get(path, 0) > after, timeout)


class Handler(socketserver.StreamRequestHandler):
    def send(self, status, body):
        if isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body, separators=(",", ":")).encode()
        self.wfile.write(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (status, len(data)) + data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def probes(self, kind, k):
        ids, nets, seen = [], [], [0] * k
        for j in range(1, k + 1):
            cid = add(N + 2 * j, "bench-probe-%d" % j)
            ids.append(cid)
            nets.append(NETS[CONTAINERS[cid][1]]["Id"])

        def connect(j):
            seen[j] = count("/networks/" + nets[j])
            self.chunk(event("network", "connect", nets[j],
                             {"container": ids[j], "name": CONTAINERS[ids[j]][1],
                              "type": "bridge"}))

        def start(j):
            wait_served("/networks/" + nets[j], seen[j])
            self.chunk(event("container", "start", ids[j],
                             {"name": CONTAINERS[ids[j]][0], "image": IMAGE}))

        def stop(j):
            wait_served("/containers/%s/json" % ids[j], 0)
            cid = ids[j]
            name = CONTAINERS[cid][0]
            remove(cid)
            for a in ("die", "destroy"):
                self.chunk(event("container", a, cid, {"name": name, "image": IMAGE}))

        if kind == "starts":
            for j in range(k):
                connect(j)
                start(j)
                stop(j)
        else:
            for j in range(k):
                connect(j)
            for j in range(k):
                start(j)
            for j in range(k):
                stop(j)
        with open(CMD + ".done", "w") as f:
            f.write("done %d\n" % k)

    def events(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
        self.wfile.flush()
        while True:
            try:
                with open(CMD) as f:
                    line = f.read().split()
                os.unlink(CMD)
            except OSError:
                line = []
            if len(line) == 2 and line[0] in ("starts", "burst"):
                self.probes(line[0], int(line[1]))
            time.sleep(0.01)

    def handle(self):
        try:
            self.serve()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def serve(self):
        while True:
            path = read_path(self.rfile)
            if path is None:
                return
            if path.startswith("/version"):
                self.send(200, {"ApiVersion": "1.41", "MinAPIVersion": "1.12",
                                "Version": "scripted"})
            elif path.startswith("/events"):
                self.events()
                return
            elif path == "/networks" or path.startswith("/networks?"):
                with lock:
                    body = b"[" + b",".join(network_text(n) for n in NETS.values()) + b"]"
                self.send(200, body)
            elif path.startswith("/networks/"):
                net = BY_NETID.get(path.split("/")[2].split("?")[0])
                if net is None:
                    self.send(404, {"message": "no such network"})
                else:
                    with lock:
                        body = network_text(net)
                    self.send(200, body)
                    self.wfile.flush()
                    mark("/networks/" + net["Id"])
            elif path.startswith("/containers/json"):
                with lock:
                    if "filters=" in path:
                        # {"id":[A, B, ...]}: every container named
                        q = urllib.parse.unquote(path.split("filters=", 1)[1])
                        want = set(json.loads(q).get("id", []))
                        self.send(200, [list_entry(c) for c in want if c in CONTAINERS])
                    else:
                        self.send(200, [list_entry(c) for c in CONTAINERS])
            elif path.startswith("/containers/"):
                cid = path.split("/")[2]
                with lock:
                    found = cid in CONTAINERS
                    body = inspect(cid) if found else {"message": "no such container"}
                self.send(200 if found else 404, body)
                self.wfile.flush()
                mark(path)
            else:
                self.send(404, {"message": "not here"})
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128  # the snapshot's inspects come 8 at a time


if os.path.exists(SOCK):
    os.unlink(SOCK)
Server(SOCK, Handler).serve_forever()
