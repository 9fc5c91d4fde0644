"""Durability: the write-ahead log of background jobs (format, writer,
replay, compaction), owned by the coordinator."""
