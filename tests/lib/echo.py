# Sends N bytes to an echo server at HOST:PORT, half-closes, reads back
# everything echoed and prints how many bytes came back. For the tests
# that count a connection's bytes (run inside a container's namespace).
# usage: python3 tests/lib/echo.py HOST PORT N
import socket
import sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"x" * int(sys.argv[3]))
s.shutdown(socket.SHUT_WR)
got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
s.close()
print(got)
