"""What the fake Docker APIs share: reading one HTTP/1.1 request."""


def read_path(rfile):
    """The path of the next request on rfile, its headers read and
    dropped and the API version prefix (/v1.41) taken off; None when the
    client has hung up."""
    line = rfile.readline()
    if not line:
        return None
    parts = line.split()
    path = parts[1].decode() if len(parts) > 1 else "/"
    while rfile.readline() not in (b"\r\n", b"\n", b""):
        pass
    if path.startswith("/v1."):
        path = "/" + path.split("/", 2)[2]
    return path
