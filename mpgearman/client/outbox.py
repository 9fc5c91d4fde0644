"""The bytes a client or worker session has yet to send: whole packets
(bytes) and streamed bodies (iterators of chunks), in order. Sans-IO."""
from collections import deque


class Outbox(deque):
    def next_chunk(self):
        """The next bytes to send (bytes or memoryview), or None."""
        while self:
            item = self[0]
            if isinstance(item, (bytes, bytearray)):
                self.popleft()
                return item
            chunk = next(item, None)
            if chunk is None:
                self.popleft()
                continue
            return chunk
        return None

    def discard(self) -> None:
        """Drop everything unsent, closing streamed bodies (and their files)."""
        for item in self:
            if hasattr(item, "close"):
                item.close()
        self.clear()
