"""mpgearman: a multi-process Gearman job server."""

__version__ = "0.1.0"
