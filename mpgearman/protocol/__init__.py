"""Sans-IO Gearman protocol: bytes <-> events. No sockets, clocks, shm or files."""
