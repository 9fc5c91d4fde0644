"""Protocol errors: the connection that caused one gets ERROR code/text and is
closed. Every other kind of failure is a bug."""


class ProtocolError(Exception):
    def __init__(self, code: bytes, text: bytes):
        super().__init__(f"{code.decode()}: {text.decode(errors='replace')}")
        self.code = code
        self.text = text


# ERROR codes and texts the server sends (gearmand 1.1.20, PROTOCOL.md 3.16)
INVALID_MAGIC = (b"INVALID_MAGIC", b"Request magic expected")
INVALID_COMMAND = (b"INVALID_COMMAND", b"Command not expected")
UNIQUE_TOO_LARGE = (b"ARGUMENT_TOO_LARGE", b"Unique value too large")
QUEUE_FULL = (b"QUEUE_ERROR", b"Job queue is full")
SPOOL_FULL = (b"QUEUE_ERROR", b"Spool is full (--max-spool-bytes)")    # ours
# The journal (--durability) cannot be written: nothing unwritten is acknowledged.
JOURNAL_ERROR = (b"QUEUE_ERROR", b"Job queue could not be written to disk")   # ours
UNKNOWN_OPTION = (b"UNKNOWN_OPTION", b"Server does not recognize given option")
NOT_FOUND_DATA = (b"JOB_NOT_FOUND", b"Job does not exist on server")
NOT_FOUND_RESULT = (b"JOB_NOT_FOUND", b"Job given in work result not found")
NOT_FOUND_EXCEPTION = (b"JOB_NOT_FOUND",
                       b"An exception was received for a job that does not exist")
HANDLE_TOO_LARGE = (b"ARGUMENT_TOO_LARGE",
                    b"Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf")

# Fatal input, where gearmand sends nothing and drops the connection (or
# crashes): the sender is told why, then closed.
BAD_MAGIC = (b"INVALID_MAGIC", b"Bad packet magic")
BAD_TYPE = (b"INVALID_COMMAND", b"Bad packet type")
TOO_BIG = (b"ARGUMENT_TOO_LARGE", b"Packet larger than the maximum payload")
ARGS_TOO_LONG = (b"ARGUMENT_TOO_LARGE", b"Packet arguments longer than 8192 bytes")
MISSING_ARG = (b"INVALID_PACKET", b"Malformed packet: missing argument")
LINE_TOO_LONG = (b"ARGUMENT_TOO_LARGE", b"Text command line too long")
# Not in gearmand, which waits for ever: a request left unfinished too long.
REQUEST_TIMEOUT = (b"TIMEOUT", b"Request not completed in time")
