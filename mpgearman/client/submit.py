"""Checking submit() arguments and building the JobState, for both clients.

It owns the validation of function names, uniques, priorities and `when`,
with one-line errors. It must not do I/O beyond opening the payload.
"""
import datetime
from typing import Any, Union

import orjson

from mpgearman.protocol.packets import MAX_SIZE, MAX_UNIQUE

from .errors import GearmanError
from .jobs import PRIORITIES, JobState
from .payload import make_payload

WhenType = Union[datetime.datetime, int, float, None]


NO_JSON: Any = object()      # json= not given (None is the JSON null)


def new_job(function: str, data: Any = b"", *, unique: str | None = None,
            priority: str = "normal", background: bool = False,
            when: WhenType = None, json: Any = NO_JSON) -> JobState:
    """json=obj sends obj encoded by orjson instead of `data`, and marks
    the job so that its result is decoded."""
    if json is not NO_JSON:
        if not (isinstance(data, bytes) and data == b""):
            raise TypeError("give the job data or json=, not both")
        data = _encode_json(json)
    if not isinstance(function, str) or not function or "\0" in function:
        raise GearmanError(f"function name must be a non-empty string without NUL, "
                           f"not {function!r}")
    if unique is not None:
        if not isinstance(unique, str) or "\0" in unique:
            raise GearmanError(f"unique must be a string without NUL, not {unique!r}")
        if len(unique.encode()) >= MAX_UNIQUE:
            raise GearmanError(f"unique is {len(unique.encode())} bytes; the limit "
                               f"is {MAX_UNIQUE - 1}")
    if priority not in PRIORITIES:
        raise GearmanError(f"priority must be one of {', '.join(PRIORITIES)}, "
                           f"not {priority!r}")
    epoch = _epoch(when)
    if epoch is not None and priority != "normal":
        raise GearmanError("a scheduled job (when=...) always runs at normal priority")
    payload = make_payload(data)
    room = MAX_SIZE - len(function.encode()) - len((unique or "").encode()) - 24
    if payload.size > room:
        payload.close()
        raise GearmanError(f"job data is {payload.size} bytes; one packet holds at "
                           f"most {room} with this function name and unique")
    return JobState(function, payload, unique or None, priority, bool(background), epoch,
                    json=json is not NO_JSON)


def _encode_json(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"json= cannot encode this object: {exc}") from None


def _epoch(when: WhenType) -> int | None:
    if when is None:
        return None
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            when = when.astimezone()     # naive means local time
        return int(when.timestamp())
    if isinstance(when, (int, float)) and not isinstance(when, bool) and when >= 0:
        return int(when)
    raise GearmanError(f"when must be a datetime or a Unix time, not {when!r}")
