"""Loopback helpers shared by the project's scripts (tests, contract run, bench)."""
import socket
import time


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds, step=0.2):
    """True once something accepts connections on 127.0.0.1:`port`, False after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(step)
    return False
