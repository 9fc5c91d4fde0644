"""The slow channel between the supervisor and each child: short text
lines over a socketpair ("ready", "lost 3", "reset 3 7"). Rare events only;
the data path never touches it. EOF means the other side is gone."""
import socket


class Control:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.setblocking(False)
        self._buf = b""

    @classmethod
    def pair(cls):
        a, b = socket.socketpair()
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, *words) -> None:
        line = " ".join(str(w) for w in words).encode() + b"\n"
        self.sock.setblocking(True)
        try:
            self.sock.sendall(line)
        finally:
            self.sock.setblocking(False)

    def receive(self):
        """Complete lines received so far, as lists of words; None at EOF."""
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return None
                self._buf += data
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return None
        *lines, self._buf = self._buf.split(b"\n")
        return [line.decode().split() for line in lines]

    def close(self) -> None:
        self.sock.close()
