"""Exceptions of the client and worker library. Every message is one line.

It owns the exception classes only; it must not know about sockets or jobs.
"""


class GearmanError(Exception):
    """Base of every error this library raises."""


class ServerUnavailable(GearmanError):
    """No configured server could be reached, or a job's server was lost and
    its retries are spent. The message names the servers and the last OS
    error."""


class Timeout(GearmanError):
    """A connect or a wait for a result took longer than allowed."""


class JobFailed(GearmanError):
    """The job ended with WORK_FAIL, or was cancelled. `.reason` says why as
    far as the client can know, `.cause` is the same for a program:

    - "worker": the worker failed it; reason is the text of its WorkFailed,
      or "the worker failed it" for a bare WORK_FAIL;
    - "retries": the server gave up after --job-retries attempts; reason is
      the server's, e.g. "retries exhausted after 3 attempts: worker lost"
      (or "...: CAN_DO_TIMEOUT expired");
    - "cancelled": reason "cancelled";
    - "unknown": a bare WORK_FAIL from a server that cannot say why
      (gearmand): the worker failed it or the server gave up after retries.

    A client-side timeout is not a JobFailed: it raises Timeout."""

    def __init__(self, message: str, reason: str = "", cause: str = "unknown"):
        super().__init__(message)
        self.reason = reason
        self.cause = cause


class JobException(GearmanError):
    """The job ended with WORK_EXCEPTION; `.message` is the worker's text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ProtocolError(GearmanError):
    """A server answered with an ERROR packet (code and text), or sent
    something that is not the Gearman protocol."""

    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


class WorkFailed(Exception):
    """Raise it from a worker function to end the job with WORK_FAIL. A
    reason (`WorkFailed("no such user")`) goes first as a WORK_WARNING
    "WorkFailed: no such user" (WORK_FAIL carries no text): mpgearman's
    client raises JobFailed with that reason, other clients see a warning."""
