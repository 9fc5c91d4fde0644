"""The Core's side of the journal (durable/): jobs rebuilt from it at start,
and a turn whose records could not be written.

Owns: restore() (one replayed background job back in its queue, under its
handle, with its priority, unique, run time and attempts) and failed() (the
JOB_CREATED answers of a turn whose journal write failed become errors, and
those jobs are dropped as a cancel drops them).
Must not: read or write files (the loop and durable/ do).
"""
from ..durable import format
from ..protocol import errors
from ..protocol.encoder import encode
from ..protocol.packets import T
from .jobtable import Job
from .spoolref import SpoolRef

JOURNAL_ERROR = encode(T.ERROR, *errors.JOURNAL_ERROR)


def restore(core, subs) -> None:
    """Background jobs read back from the journal (format.Submit each, in
    the order they were submitted)."""
    jobs, functions, dirty, board = core.jobs, core.functions, core.dirty, core.board
    add, push, get_fn = jobs.add, functions.push, functions.get
    now = core.clock()
    live = count = spooled = 0
    top = jobs.count
    for sub in subs:
        fn = get_fn(sub.fname)
        data = sub.data
        if sub.spooled:
            data = SpoolRef(data.decode(), sub.size)
            spooled += sub.size
        job = Job(sub.handle, fn, sub.unique, data, sub.prio, True, None)
        no = job.no = sub.no
        job.retries = sub.runs          # a run it did not finish counts as an attempt
        job.logged = True
        job.since = now
        live += sub.length
        count += 1
        if no > top:
            top = no
        if board is not None:
            job.held = board.claim(no)
        add(job)
        fn.total += 1
        dirty[fn] = None
        if sub.when and sub.when > now:
            functions.defer(job, sub.when)
        else:
            push(job)
    jobs.count = top
    core.journal_live += live
    core.journal_jobs += count
    core.spool_bytes += spooled


def drop(core, job: Job) -> None:
    """A background submission that is not acknowledged after all: the job
    is no longer one (freed when a worker reaches it, unless foreground
    clients wait for it)."""
    job.keep = job.bg = False
    if not job.clients:
        job.ignore = True
        if job.indexed:
            core.jobs.unindex(job)


def failed(core) -> None:
    """The journal of this turn could not be written: every job journaled in
    it is answered ERROR instead of JOB_CREATED and dropped (freed when a
    worker reaches it); their records leave the turn's bytes, the rest (ends
    and runs of older jobs) stay to be written later."""
    out, dropped = core.out, set()
    for k, job in core.acks:
        out[k] = out[k]._replace(data=JOURNAL_ERROR)
        dropped.add(job.no)
        if type(job.data) is SpoolRef:
            core.spool.unkeep(job.data)
        job.logged = False
        core.journal_live -= format.submit_size(job.handle, job.fn.name, job.unique, job.data)
        core.journal_jobs -= 1
        drop(core, job)
    core.acks.clear()
    core.journal_ok = False
    if dropped:
        core.journal[:] = without(core.journal, dropped)


def without(buf, dropped: set) -> bytearray:
    """The records of `buf` but those of the jobs numbered in `dropped`."""
    kept = bytearray()
    for _, body in format.records(buf, 0):
        if format.SHORT.unpack_from(body)[1] not in dropped:
            kept += format.HEAD.pack(len(body), format.crc32(body)) + body
    return kept
