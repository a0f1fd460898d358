"""Free TCP ports on loopback, for servers a test starts itself."""

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n: int = 3, host: str = "127.0.0.1") -> list[int]:
    """n consecutive ports nothing listens on (a base port and the next ones, as the emulators take them)."""
    for _ in range(200):
        base = free_port(host)
        if base + n > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind((host, port))
            return list(range(base, base + n))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no consecutive free ports")
