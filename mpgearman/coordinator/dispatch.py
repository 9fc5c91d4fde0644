"""Binary requests: TABLE maps each packet type to one small handler.

Owns: argument checks and reply packets of every request type (PROTOCOL.md
2 and 3), and forwarding WORK_* packets to attached clients (3.5).
Must not: keep state of its own or change jobs except through the Core's
operations (submit, grab, pre_sleep, free, ...). Handlers take
(core, conn, args) where args are the decoded arguments; for has_data types
the last one is bytes or a SpoolRef that the handler must keep or release.
"""
from ..protocol import errors
from ..protocol.encoder import encode, encode_head, reply
from ..protocol.packets import MAX_HANDLE, MAX_UNIQUE, T
from .actions import Send, SendSpooled
from .cnum import LONG_MAX, LONG_MIN, atoi_u32, strtol
from .queues import HIGH, LOW, NORMAL
from .spoolref import release_args

MAX_TIMEOUT_TEXT = 20      # gearmand ignores longer CAN_DO_TIMEOUT values
# Plain ints on the per-job paths (an IntEnum member read is slow on 3.11).
GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL = map(int, (T.GRAB_JOB, T.GRAB_JOB_UNIQ, T.GRAB_JOB_ALL))
WORK_EXCEPTION = int(T.WORK_EXCEPTION)


def not_expected(core, c, args):
    """Response types, type 5, ALL_YOURS and SUBMIT_JOB_SCHED."""
    release_args(core.spool, args)
    core.error(c, errors.INVALID_COMMAND)


# -- registrations and worker state ---------------------------------------------

def can_do(core, c, args):
    core.registry.add(c, core.functions.get(args[0]), 0)


def can_do_timeout(core, c, args):
    name, text = args
    if len(text) > MAX_TIMEOUT_TEXT:
        return
    value, overflow = strtol(text)
    if overflow or value in (LONG_MAX, LONG_MIN):
        return          # gearmand rejects these without a reply
    core.registry.add(c, core.functions.get(name), max(value, 0))


def cant_do(core, c, args):
    # Jobs it is running keep running (gearmand requeued them and then lost
    # their results, PROTOCOL.md 6 item 17); only new assignments stop.
    fn = core.functions.by_name.get(args[0])
    if fn is not None:
        core.registry.remove(c, fn)


def reset_abilities(core, c, args):
    core.registry.reset(c)


def pre_sleep(core, c, args):
    core.pre_sleep(c)


def grab_job(core, c, args):
    core.grab(c, GRAB_JOB)


def grab_job_uniq(core, c, args):
    core.grab(c, GRAB_JOB_UNIQ)


def grab_job_all(core, c, args):
    core.grab(c, GRAB_JOB_ALL)


def set_client_id(core, c, args):
    c.client_id = args[0].partition(b"\0")[0][:127]


def option_req(core, c, args):
    option = args[0].partition(b"\0")[0].lower()
    if len(option) < 64 and option in (b"exceptions", b"fail_reasons"):
        if option == b"exceptions":
            c.exceptions = True
        else:
            c.fail_reasons = True
        core.send(c, encode(T.OPTION_RES, args[0]))     # echoed as received
    else:
        core.error(c, errors.UNKNOWN_OPTION)


def echo_req(core, c, args):
    data = args[0]
    if type(data) is bytes:
        core.send(c, encode(T.ECHO_RES, data))
    else:
        core.out.append(SendSpooled(c.id, encode_head(T.ECHO_RES, (), data.size), data))


# -- submissions ------------------------------------------------------------------

def _submitter(prio, bg):
    def submit(core, c, args):
        fname, unique, data = args
        if len(unique) > MAX_UNIQUE:
            core.refuse(c, errors.UNIQUE_TOO_LARGE, data)
        else:
            core.submit(c, fname, unique, data, prio, bg)
    return submit


def submit_epoch(core, c, args):
    fname, unique, epoch, data = args
    when, overflow = strtol(epoch)
    if overflow:
        release_args(core.spool, args)
        core.close(c)           # gearmand drops the connection, no reply
    elif len(unique) > MAX_UNIQUE:
        core.refuse(c, errors.UNIQUE_TOO_LARGE, data)
    else:
        core.submit(c, fname, unique, data, NORMAL, True, when)


def _reduce_submitter(bg):
    def submit_reduce(core, c, args):
        fname, unique, reducer, _aggregate, data = args
        # gearmand checks the reducer's length here; the unique is what matters.
        if len(unique) > MAX_UNIQUE:
            core.refuse(c, errors.UNIQUE_TOO_LARGE, data)
        else:
            core.submit(c, fname, unique, data, NORMAL, bg, 0, reducer)
    return submit_reduce


# -- results from workers -----------------------------------------------------------

def forward(core, job, ptype, handle, data):
    """Send handle+data to the attached clients, newest attachment first.
    WORK_EXCEPTION goes as WORK_FAIL (bare handle) to clients without the
    `exceptions` option. A spooled payload is shared once per extra taker."""
    clients = job.clients
    out = core.out
    exc = ptype == WORK_EXCEPTION
    if type(data) is bytes:
        if not clients:
            return
        packet = reply(ptype, handle + b"\0" + data)
        if not exc:
            for c in reversed(clients):
                out.append(Send(c.id, packet))
            return
        fail = encode(T.WORK_FAIL, job.handle)
        for c in reversed(clients):
            out.append(Send(c.id, packet if c.exceptions else fail))
        return
    takers = sum(1 for c in clients if c.exceptions) if exc else len(clients)
    if not takers:
        core.spool.release(data)
    head = encode_head(ptype, (handle,), data.size)
    fail = encode(T.WORK_FAIL, job.handle) if exc else None
    for c in reversed(clients):
        if exc and not c.exceptions:
            out.append(Send(c.id, fail))
            continue
        takers -= 1
        ref = data if takers == 0 else core.share(job, data)
        if ref is None:           # no copy for this client: it alone fails
            out.append(Send(c.id, fail or encode(T.WORK_FAIL, job.handle)))
            continue
        out.append(SendSpooled(c.id, head, ref))


def _data_forwarder(ptype):
    ptype = int(ptype)

    def work_data(core, c, args):
        handle, data = args
        job = core.owned(c, handle)
        if job is None:
            core.refuse(c, errors.NOT_FOUND_DATA, data)
        else:
            forward(core, job, ptype, handle, data)
    return work_data


def work_status(core, c, args):
    handle, numerator, denominator = args
    job = core.owned(c, handle)
    if job is None:
        core.error(c, errors.NOT_FOUND_RESULT)
        return
    job.num = atoi_u32(numerator)
    job.den = atoi_u32(denominator[:10])     # gearmand reads at most 10 chars
    if job.held:
        core.board.show(job.no, True, job.num, job.den)
    if job.clients:
        packet = encode(T.WORK_STATUS, handle, numerator, denominator)   # verbatim
        for client in reversed(job.clients):
            core.out.append(Send(client.id, packet))


def _finisher(ptype, not_found):
    ptype = int(ptype)
    exception = ptype == WORK_EXCEPTION

    def work_done(core, c, args):
        handle, data = args
        job = core.owned(c, handle)
        if job is None:
            core.refuse(c, not_found, data)
            return
        if exception:
            job.fn.exceptions += 1
        else:
            job.fn.completed += 1
        forward(core, job, ptype, handle, data)
        core.free(job)
    return work_done


def work_fail(core, c, args):
    raw = args[0]
    handle = raw.partition(b"\0")[0]
    if len(handle) > MAX_HANDLE:
        core.error(c, errors.HANDLE_TOO_LARGE)
        return
    job = core.owned(c, handle)
    if job is None:
        core.error(c, errors.NOT_FOUND_RESULT)
        return
    if job.clients:
        packet = encode(T.WORK_FAIL, raw)          # forwarded verbatim
        for client in reversed(job.clients):
            core.out.append(Send(client.id, packet))
    job.fn.failed += 1
    core.free(job)


# -- status queries -------------------------------------------------------------------

def get_status(core, c, args):
    handle = args[0].partition(b"\0")[0]
    if len(handle) > MAX_HANDLE:
        return          # gearmand sends nothing
    job = core.jobs.jobs.get(handle)
    if job is None:
        core.send(c, encode(T.STATUS_RES, handle, b"0", b"0", b"0", b"0"))
    else:
        core.send(c, encode(T.STATUS_RES, handle, b"1", b"1" if job.worker else b"0",
                            b"%d" % job.num, b"%d" % job.den))


def get_status_unique(core, c, args):
    unique = args[0].partition(b"\0")[0]
    if len(unique) > MAX_UNIQUE:
        core.close(c)   # gearmand drops the connection
        return
    job = core.jobs.get_unique(unique)
    if job is None:
        core.send(c, encode(T.STATUS_RES_UNIQUE, unique, b"0", b"0", b"0", b"0", b"0"))
    else:
        core.send(c, encode(T.STATUS_RES_UNIQUE, unique, b"1", b"1" if job.worker else b"0",
                            b"%d" % job.num, b"%d" % job.den, b"%d" % len(job.clients)))


TABLE = {
    T.CAN_DO: can_do,
    T.CANT_DO: cant_do,
    T.RESET_ABILITIES: reset_abilities,
    T.PRE_SLEEP: pre_sleep,
    T.SUBMIT_JOB: _submitter(NORMAL, False),
    T.GRAB_JOB: grab_job,
    T.WORK_STATUS: work_status,
    T.WORK_COMPLETE: _finisher(T.WORK_COMPLETE, errors.NOT_FOUND_RESULT),
    T.WORK_FAIL: work_fail,
    T.GET_STATUS: get_status,
    T.ECHO_REQ: echo_req,
    T.SUBMIT_JOB_BG: _submitter(NORMAL, True),
    T.SUBMIT_JOB_HIGH: _submitter(HIGH, False),
    T.SET_CLIENT_ID: set_client_id,
    T.CAN_DO_TIMEOUT: can_do_timeout,
    T.WORK_EXCEPTION: _finisher(T.WORK_EXCEPTION, errors.NOT_FOUND_EXCEPTION),
    T.OPTION_REQ: option_req,
    T.WORK_DATA: _data_forwarder(T.WORK_DATA),
    T.WORK_WARNING: _data_forwarder(T.WORK_WARNING),
    T.GRAB_JOB_UNIQ: grab_job_uniq,
    T.SUBMIT_JOB_HIGH_BG: _submitter(HIGH, True),
    T.SUBMIT_JOB_LOW: _submitter(LOW, False),
    T.SUBMIT_JOB_LOW_BG: _submitter(LOW, True),
    T.SUBMIT_JOB_EPOCH: submit_epoch,
    T.SUBMIT_REDUCE_JOB: _reduce_submitter(False),
    T.SUBMIT_REDUCE_JOB_BACKGROUND: _reduce_submitter(True),
    T.GRAB_JOB_ALL: grab_job_all,
    T.GET_STATUS_UNIQUE: get_status_unique,
}
