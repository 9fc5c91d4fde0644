"""Admin text commands: COMMANDS maps a command word to one small handler.

Owns: what each gearmand 1.1.20 text command does and answers (PROTOCOL.md
4.2), using the word rules and reply spellings of protocol/admin.py.
Must not: change jobs except through Core operations (cancel, free via
purge), or walk anything but the table a command lists; a listing is built
in one pass as a list of pieces of about CHUNK bytes (one Send each), so a
listing of any size is never held whole as one object.

A handler takes (core, words) and returns the reply, or None when gearmand
would treat the line as an unknown command. Names and ids in replies go
through text.shown() and names in commands through text.named(), so an odd
byte in one of them (a newline, say) cannot break a listing or make a
function impossible to name. `shutdown` is deliberately
absent: 1.1.20 no longer has it.
"""
from itertools import chain

from ..protocol import admin as text
from .actions import Send
from .cnum import atoi
from .queues import BOUNDS, HIST_LEN
from .workers import staffing

_END = text.END
CHUNK = 64 * 1024     # bytes per piece of a listing
HIST = b"%d," * (HIST_LEN - 1) + b"%.6f"    # a histogram in a `stats` function line


def run_admin(core, c, line: bytes, crlf: bool) -> None:
    """One admin line. `crlf` is not needed: we do not reproduce gearmand's
    `create function` byte loss on bare-LF lines."""
    words = text.split_words(line)
    if len(words) > text.MAX_WORDS:
        core.close(c)           # gearmand drops the connection, says nothing
        return
    handler = COMMANDS.get(words[0].lower())
    reply = handler(core, words) if handler is not None else None
    if reply is None:
        reply = text.unknown_command(words[0])
    if type(reply) is list:
        core.out.extend([Send(c.id, piece) for piece in reply])
    else:
        core.out.append(Send(c.id, reply))


def listing(parts) -> list:
    """The bytes of `parts` then the end line, joined into pieces of about
    CHUNK bytes (a part is never cut)."""
    pieces, run, size = [], [], 0
    for part in parts:
        run.append(part)
        size += len(part)
        if size >= CHUNK:
            pieces.append(b"".join(run))
            run, size = [], 0
    run.append(_END)
    pieces.append(b"".join(run))
    return pieces


def status(core, words):
    shown = text.shown
    return listing(b"%s\t%d\t%d\t%d\n" % (shown(fn.name), fn.total, fn.running, fn.workers)
                   for fn in core.functions.by_name.values())


def priority_status(core, words):
    shown = text.shown
    return listing(b"%s\t%d\t%d\t%d\t%d\n" % (shown(fn.name), *fn.queued_by_priority(),
                                              fn.workers)
                   for fn in core.functions.by_name.values())


def workers(core, words):
    return listing(_worker_parts(core))


def _worker_parts(core):
    """A line per connection, its names as separate parts: one worker's
    line can be megabytes long."""
    shown = text.shown
    for c in core.conns.values():
        yield b"%d %s %s :" % (c.fd, c.peer, shown(c.client_id))
        if c.funcs:
            for name in c.registrations():
                yield b" " + shown(name)
        yield b"\n"


def show(core, words):
    if len(words) < 2:
        return None
    if len(words) == 2 and words[1].lower() == b"jobs":
        return listing(b"%s\t%d\t%d\t%d\n" % (job.handle, job.retries, job.ignore, job.bg)
                       for job in core.jobs.jobs.values())
    if len(words) == 3 and words[1].lower() == b"unique" and words[2].lower() == b"jobs":
        shown = text.shown
        return listing(shown(job.unique) + b"\n" for job in core.jobs.jobs.values())
    return text.ERR_UNKNOWN_SHOW


def cancel(core, words):
    if len(words) < 3:
        return None
    if len(words) != 3 or words[1].lower() != b"job":
        return text.ERR_UNKNOWN_ERROR
    return text.OK if core.cancel(words[2]) else text.ERR_UNKNOWN_JOB


def create(core, words):
    if len(words) != 3 or words[1].lower() != b"function" or not words[2]:
        return text.invalid_arguments(words[0])
    core.functions.get(text.named(words[2]))
    return text.OK


def drop(core, words):
    if len(words) != 3 or words[1].lower() != b"function":
        return text.invalid_arguments(words[0])
    fn = _find(core, text.named(words[2]))
    if fn is None:
        return text.ERR_NO_FUNCTION
    if fn.workers or fn.running:
        return text.ERR_FUNCTION_BUSY
    # gearmand drops it anyway and leaves the queued jobs dangling; we refuse
    # while a live job waits, and free jobs that were only waiting to be reaped.
    if not core.drop_function(fn):
        return text.ERR_FUNCTION_QUEUED
    return text.OK


def _find(core, name: bytes):
    """The function `name` names, ignoring case as gearmand (the exact
    spelling is looked up first, the walk only when that misses)."""
    fn = core.functions.by_name.get(name)
    if fn is not None:
        return fn
    wanted = name.lower()
    for fn in core.functions.by_name.values():
        if fn.name.lower() == wanted:
            return fn
    return None


def maxqueue(core, words):
    if len(words) == 1:
        return text.invalid_arguments(words[0])
    limits = [max(atoi(w), 0) for w in words[2:5]]
    if len(limits) <= 1:
        limits = (limits or [0]) * 3          # one number (or none) for all
    else:
        limits = (limits + [0])[:3]           # two numbers: low goes back to 0
    fn = core.functions.by_name.get(text.named(words[1]))
    if fn is not None:
        fn.maxq = limits
    return text.OK


def stats(core, words):
    """Ours, not gearmand's (gearmand answers it as an unknown command, which
    is how `mpgearman stat` tells the two apart): "key value" lines, then a
    line per function (function_line), then ".". All of it is one moment:
    `mpgearman stat` reads everything it shows of an mpgearman here."""
    pairs = [b"%s %s\n" % (str(k).encode(), str(v).encode()) for k, v in stats_pairs(core)]
    return listing(chain(pairs, _function_lines(core)))


def stats_pairs(core) -> list:
    """The (key, value) pairs of `stats`: totals over the functions, and
    what only the process around the core knows (core.extra_stats)."""
    total = dict.fromkeys(("submitted", "completed", "failed", "exceptions",
                           "requeued", "queued", "running", "workers"), 0)
    for fn in core.functions.by_name.values():
        for name in ("submitted", "completed", "failed", "exceptions", "requeued",
                     "running", "workers"):
            total[name] += getattr(fn, name)
        total["queued"] += sum(fn.queued_by_priority())
    pairs = [("version", core.version.decode()),
             ("uptime", f"{core.clock() - core.started:.3f}"),
             ("functions", len(core.functions.by_name)),
             ("jobs", len(core.jobs))]
    pairs += [(f"jobs_{k}" if k != "workers" else k, v) for k, v in total.items()]
    pairs += [("connections", len(core.conns)),
              ("worker_connections", sum(1 for c in core.conns.values() if c.funcs)),
              ("latency_buckets", ",".join(map(str, BOUNDS)))]
    return pairs + list(core.extra_stats())


def _function_lines(core):
    now = core.clock()
    busy, idle = staffing(core.conns.values())
    for fn in core.functions.by_name.values():
        yield function_line(fn, now, (busy[fn], idle[fn]))


def _hist(hist) -> bytes:
    if hist is None or not any(hist):
        return b"0"
    return HIST % tuple(hist)


def function_line(fn, now: float, staff) -> bytes:
    """function TAB name TAB queued high, normal, low TAB running TAB
    workers TAB busy TAB idle TAB epoch jobs waiting TAB age in seconds of
    the oldest queued job ("-": none) TAB wait histogram TAB run histogram;
    a histogram is its bucket counts (not cumulative, for the bounds of
    `latency_buckets`) then the sum of the seconds, comma-separated, or 0
    when it has none yet."""
    oldest = fn.oldest()
    age = b"%.3f" % max(now - oldest, 0.0) if oldest else b"-"
    return b"function\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n" % (
        text.shown(fn.name), *fn.queued_by_priority(), fn.running, fn.workers, *staff,
        fn.waiting, age, _hist(fn.waits), _hist(fn.runs))


def scheduled(core, words):
    """Ours, not gearmand's: "NAME\tN" for each function with future epoch
    jobs (SUBMIT_JOB_EPOCH) waiting outside its queue, then ".". `status`
    and `prioritystatus` count them among the queued (normal) jobs."""
    shown = text.shown
    return listing(b"%s\t%d\n" % (shown(fn.name), fn.waiting)
                   for fn in core.functions.by_name.values() if fn.waiting)


def getpid(core, words):
    return text.ok_value(b"%d" % core.pid)


def verbose(core, words):
    return text.ok_value(text.verbose_name(core.config.log_level))


def version(core, words):
    return text.ok_value(core.version)


COMMANDS = {
    b"status": status,
    b"prioritystatus": priority_status,
    b"workers": workers,
    b"show": show,
    b"cancel": cancel,
    b"create": create,
    b"drop": drop,
    b"maxqueue": maxqueue,
    b"getpid": getpid,
    b"verbose": verbose,
    b"version": version,
    b"stats": stats,
    b"scheduled": scheduled,
}
