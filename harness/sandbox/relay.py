"""Inside the sandbox: forward 127.0.0.1:PORT to ralph's proxy socket, then become the agent's command.

`python -I -S -c <this file> SOCKET PORT COMMAND...` (network.py builds it; the standard library only, so ralph's
read-only interpreter runs it without site-packages). It binds the port first (so the agent never races it),
forks a daemon that relays every connection to the Unix socket SOCKET, and execs COMMAND in its own place:
the agent keeps this process, its stdin and its output. The daemon belongs to the sandbox's PID namespace
and dies with it when the agent exits. It filters nothing: the proxy on ralph's side does, and this file is
in the agent's reach anyway (it runs with the agent's rights, in the agent's namespace).
Hand-written because no tool for this (socat) can be assumed installed.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _serve_one(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
    back.start()
    _copy(client, upstream)
    back.join()
    client.close()
    upstream.close()


def serve(listener: socket.socket, path: str) -> None:
    """Relay every connection accepted on `listener` to the Unix socket `path`, forever."""
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(client, path), daemon=True).start()


def main(argv: list[str]) -> None:
    path, port, *command = argv
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(128)
    if os.fork() == 0:  # the relay: detached twice over, so the agent never has it as a child to wait for
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            serve(listener, path)
        os._exit(0)
    os.wait()
    listener.close()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
