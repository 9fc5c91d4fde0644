"""Spool ref accounting: every ref handed to the core is released exactly
once, by the core or by the receiver of a SendSpooled (the harness plays the
acceptor and releases what it is sent). FakeSpool raises on a double
release; the fixtures check that no name is live once no job is left."""
import pytest

from corekit import SendSpooled, T, check_invariants, check_no_lost_wakeup, got


@pytest.fixture
def big(h):
    return lambda size=10_000_000: h.spool.new(size)


def test_job_data_shared_per_assignment_released_when_freed(h, big):
    c, w = h.conn(), h.worker(b"f")
    h.send(c, T.SUBMIT_JOB, b"f", b"u", big())
    assert got(h.send(w, T.GRAB_JOB_UNIQ), w) == [
        (T.JOB_ASSIGN_UNIQ, b"H:vm:1\x00f\x00u\x00<spool 10000000>")]
    h.core.disconnect(w)                       # requeued: the job keeps its ref
    w2 = h.worker(b"f")
    assert got(h.send(w2, T.GRAB_JOB_ALL), w2)[0][1].endswith(b"<spool 10000000>")
    assert len(h.spool.live) == 1
    h.send(w2, T.WORK_COMPLETE, b"H:vm:1", b"small")
    assert h.spool.live == set()


@pytest.mark.parametrize("clients", [0, 1, 3])
def test_spooled_result_to_k_clients(h, big, clients):
    cs = [h.conn() for _ in range(clients)]
    submitter = cs[0] if cs else h.conn()
    h.send(submitter, T.SUBMIT_JOB_BG if not cs else T.SUBMIT_JOB, b"f", b"u", b"in")
    for c in cs[1:]:
        h.send(c, T.SUBMIT_JOB, b"f", b"u", big())     # coalesced: payload dropped
    w = h.worker(b"f")
    h.grab(w)
    shares = h.spool.shares
    acts = h.send(w, T.WORK_COMPLETE, b"H:vm:1", big(123))
    assert h.spool.shares - shares == max(clients - 1, 0)
    assert [a.conn for a in acts] == cs[::-1]
    assert all(type(a) is SendSpooled for a in acts)
    assert all(got([a], a.conn) == [(T.WORK_COMPLETE, b"H:vm:1\x00<spool 123>")] for a in acts)


def test_spooled_data_and_warning_forwarded(h, big):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    for ptype in (T.WORK_DATA, T.WORK_WARNING):
        assert got(h.send(w, ptype, b"H:vm:1", big(5)), c) == [(ptype, b"H:vm:1\x00<spool 5>")]
    h.core.disconnect(c)
    assert h.send(w, T.WORK_DATA, b"H:vm:1", big(5)) == []          # nobody: released
    h.send(w, T.WORK_COMPLETE, b"H:vm:1", b"")


def test_spooled_exception_mixed_clients(h, big):
    plain, opted1, opted2 = h.conn(), h.conn(), h.conn()
    for c in (opted1, opted2):
        h.send(c, T.OPTION_REQ, b"exceptions")
    for c in (opted1, plain, opted2):
        h.submit(c, b"f", b"u")
    w = h.worker(b"f")
    h.grab(w)
    acts = h.send(w, T.WORK_EXCEPTION, b"H:vm:1", big(9))
    assert [(a.conn, got([a], a.conn)) for a in acts] == [
        (opted2, [(T.WORK_EXCEPTION, b"H:vm:1\x00<spool 9>")]),
        (plain, [(T.WORK_FAIL, b"H:vm:1")]),
        (opted1, [(T.WORK_EXCEPTION, b"H:vm:1\x00<spool 9>")]),
    ]


def test_spooled_exception_nobody_wants_it(h, big):
    c, w = h.conn(), h.worker(b"f")
    h.submit(c, b"f")
    h.grab(w)
    acts = h.send(w, T.WORK_EXCEPTION, b"H:vm:1", big(9))
    assert got(acts, c) == [(T.WORK_FAIL, b"H:vm:1")]


@pytest.mark.parametrize("ptype, args", [
    (T.SUBMIT_JOB, (b"f", b"u" * 65)),
    (T.SUBMIT_JOB_EPOCH, (b"f", b"u" * 65, b"1")),
    (T.SUBMIT_JOB_EPOCH, (b"f", b"", b"99999999999999999999")),
    (T.SUBMIT_REDUCE_JOB, (b"f", b"u" * 65, b"r", b"")),
    (T.SUBMIT_JOB_SCHED, (b"f", b"", b"1", b"2", b"3", b"4", b"5")),
    (T.JOB_ASSIGN, (b"H:1", b"f")),
    (T.WORK_DATA, (b"H:vm:9",)),
    (T.WORK_WARNING, (b"H:vm:9",)),
    (T.WORK_COMPLETE, (b"H:vm:9",)),
    (T.WORK_EXCEPTION, (b"H:vm:9",)),
])
def test_refused_packets_release_their_data(h, big, ptype, args):
    c = h.conn()
    h.send(c, ptype, *args, big())
    assert h.spool.live == set()


def test_queue_full_releases(h, big):
    c = h.conn()
    h.submit(c, b"f")
    h.admin(c, b"maxqueue f 1")
    h.send(c, T.SUBMIT_JOB, b"f", b"", big())
    assert len(h.spool.live) == 0


def test_unknown_connection_releases(h, big):
    h.send(12345, T.SUBMIT_JOB, b"f", b"", big())
    assert h.spool.live == set()


def test_dash_unique_with_spooled_data_never_coalesces(h, big):
    c = h.conn()
    assert h.submit(c, b"f", b"-", big()) == b"H:vm:1"
    assert h.submit(c, b"f", b"-", big()) == b"H:vm:2"
    adm = h.conn()
    for handle in (b"H:vm:1", b"H:vm:2"):
        assert h.admin(adm, b"cancel job " + handle) == b"OK\r\n"
    w = h.worker(b"f")
    assert h.grab(w) == (T.NO_JOB, b"")              # reaped: refs released
    assert h.spool.live == set()


def test_echo_of_spooled_data_hands_the_ref_over(h, big):
    c = h.conn()
    assert got(h.send(c, T.ECHO_REQ, big(7)), c) == [(T.ECHO_RES, b"<spool 7>")]


def test_abandoned_and_dropped_function_release(h, big):
    c = h.conn()
    for _ in range(3):
        h.send(c, T.SUBMIT_JOB, b"f", b"", big())
    h.core.disconnect(c)
    a = h.conn()
    assert h.admin(a, b"drop function f") == b"OK\r\n"
    assert h.spool.live == set()


def test_retry_exhaustion_releases(make):
    h = make(job_retries=1)
    c, w = h.conn(), h.worker(b"f")
    h.send(c, T.SUBMIT_JOB, b"f", b"", h.spool.new(100))
    h.grab(w)
    h.core.disconnect(w)
    assert [a.conn for a in h.take()] == [c]
    assert h.spool.live == set()


class Scenario:
    """Random traffic for one Harness: clients, workers with and without a
    CAN_DO_TIMEOUT, spooled and plain payloads."""

    def __init__(self, make, seed):
        import random
        self.rnd = rnd = random.Random(seed)
        self.h = make(job_retries=rnd.choice([0, 3]), round_robin=bool(seed % 2),
                      worker_wakeup=seed % 3)
        self.admin = self.h.conn()
        self.clients = [self.h.conn() for _ in range(4)]
        self.workers = []
        for _ in range(3):
            self.new_worker()
        self.actions = [(0.25, self.submit), (0.03, self.submit_epoch), (0.2, self.worker_asks),
                        (0.27, self.worker_reports), (0.05, self.client_leaves),
                        (0.04, self.worker_leaves), (0.02, self.cant_do), (0.02, self.cancel),
                        (0.05, self.time_passes), (0.07, self.echo)]

    def new_worker(self):
        w = self.h.conn()
        self.h.send(w, T.CAN_DO_TIMEOUT, b"a", self.rnd.choice([b"0", b"1000", b"3000"]))
        self.h.send(w, T.CAN_DO, b"b")
        if self.rnd.random() < 0.3:          # sleeps on the broad list
            for i in range(40):
                self.h.send(w, T.CAN_DO, b"x%d" % i)
        self.workers.append(w)

    def payload(self):
        return self.h.spool.new(self.rnd.randrange(1, 99)) if self.rnd.random() < 0.5 else b"p"

    def finish(self, w, job):
        ptype = self.rnd.choice([T.WORK_COMPLETE, T.WORK_EXCEPTION, T.WORK_FAIL])
        if ptype == T.WORK_FAIL:
            self.h.send(w, ptype, job.handle)
        else:
            self.h.send(w, ptype, job.handle, self.payload())

    def submit(self):
        ptype = self.rnd.choice([T.SUBMIT_JOB, T.SUBMIT_JOB_BG, T.SUBMIT_JOB_LOW,
                                 T.SUBMIT_JOB_HIGH_BG])
        self.h.send(self.rnd.choice(self.clients), ptype, self.rnd.choice([b"a", b"b"]),
                    self.rnd.choice([b"", b"-", b"u1", b"u2"]), self.payload())

    def submit_epoch(self):
        when = b"%d" % (self.h.clock() + self.rnd.randrange(-2, 5))
        self.h.send(self.rnd.choice(self.clients), T.SUBMIT_JOB_EPOCH, b"b",
                    self.rnd.choice([b"", b"e1"]), when, self.payload())

    def worker_asks(self):
        self.h.send(self.rnd.choice(self.workers),
                    self.rnd.choice([T.GRAB_JOB, T.GRAB_JOB_UNIQ, T.GRAB_JOB_ALL, T.PRE_SLEEP]))

    def worker_reports(self):
        w = self.rnd.choice(self.workers)
        held = list(self.h.core.conns[w].running)
        if not held:
            return
        job = self.rnd.choice(held)
        if self.rnd.random() < 0.3:
            self.h.send(w, T.WORK_DATA, job.handle, self.payload())
        else:
            self.finish(w, job)

    def client_leaves(self):
        c = self.rnd.choice(self.clients)
        self.h.core.disconnect(c)
        self.clients.remove(c)
        self.clients.append(self.h.conn())

    def worker_leaves(self):
        w = self.rnd.choice(self.workers)
        self.h.core.disconnect(w)
        self.workers.remove(w)
        self.new_worker()

    def cant_do(self):
        self.h.send(self.rnd.choice(self.workers), T.CANT_DO, b"a")

    def cancel(self):
        if self.h.core.jobs.jobs:
            job = self.rnd.choice(list(self.h.core.jobs.jobs.values()))
            self.h.core.admin(self.admin, b"cancel job " + job.handle, True)

    def time_passes(self):
        self.h.clock.advance(self.rnd.random())
        self.h.core.tick()

    def echo(self):
        self.h.send(self.rnd.choice(self.clients), T.ECHO_REQ, self.payload())

    def step(self):
        r = self.rnd.random()
        for weight, action in self.actions:
            if r < weight:
                action()
                break
            r -= weight
        self.h.take()
        check_invariants(self.h.core)
        if self.h.config.worker_wakeup == 0:
            check_no_lost_wakeup(self.h.core)

    def drain(self):
        """Everyone leaves; one last worker finishes whatever is left."""
        h = self.h
        for conn in self.workers + self.clients:
            h.core.disconnect(conn)
        h.clock.advance(10)
        h.tick()
        w = h.worker(b"a", b"b")
        while h.core.jobs.jobs:
            if h.grab_handle(w) is None:        # only ignored jobs were left
                assert not h.core.jobs.jobs
            for job in list(h.core.conns[w].running):
                self.finish(w, job)
            h.take()
            check_invariants(h.core)


@pytest.mark.parametrize("seed", range(4))
def test_random_scenario_releases_everything(make, seed):
    """After every random step the core's counters agree with its jobs; at
    the end every job is finished and every spool name was released once."""
    scenario = Scenario(make, seed)
    for _ in range(2500):
        scenario.step()
    scenario.drain()
    assert scenario.h.spool.live == set()


class BrokenShare:
    """A spool whose extra names cannot be made: the file is gone (ENOENT)
    or the file system has no room for a new entry (ENOSPC)."""

    def __init__(self, spool, errno_):
        self.spool, self.errno = spool, errno_

    def __call__(self, ref):
        raise OSError(self.errno, "cannot link", ref.name)


@pytest.mark.parametrize("errno_", [2, 28])
def test_unreadable_payload_fails_that_job_only(h, big, caplog, errno_):
    c, c2, w = h.conn(), h.conn(), h.worker(b"f")
    lost = h.submit(c, b"f", b"u1", big(100_000))
    kept = h.submit(c2, b"f", b"u2", b"small")
    h.spool.share = BrokenShare(h.spool, errno_)
    acts = h.send(w, T.GRAB_JOB)
    # The job whose file is gone fails; the worker gets the next one.
    assert got(acts, c) == [(T.WORK_FAIL, lost)]
    assert got(acts, w) == [(T.JOB_ASSIGN, kept + b"\0f\0small")]
    assert lost.decode() in caplog.text and "in.1" in caplog.text
    assert got(h.send(w, T.GRAB_JOB), w) == [(T.NO_JOB, b"")]
    h.send(w, T.WORK_COMPLETE, kept, b"")
    fn = h.core.functions.by_name[b"f"]
    assert (fn.failed, fn.total, fn.running) == (1, 0, 0)
    check_invariants(h.core)


def test_unreadable_background_payload_is_dropped(h, big, caplog):
    c, w = h.conn(), h.worker(b"f")
    h.send(c, T.SUBMIT_JOB_BG, b"f", b"", big(100_000))
    h.spool.share = BrokenShare(h.spool, 2)
    assert got(h.send(w, T.GRAB_JOB), w) == [(T.NO_JOB, b"")]
    assert len(h.core.jobs) == 0 and "H:vm:1" in caplog.text


def test_unshareable_result_fails_that_client_only(h, big, caplog):
    c1, c2, w = h.conn(), h.conn(), h.worker(b"f")
    handle = h.submit(c1, b"f", b"u")
    h.submit(c2, b"f", b"u")                  # coalesced: two clients
    h.grab(w)
    h.spool.share = BrokenShare(h.spool, 28)
    acts = h.send(w, T.WORK_COMPLETE, handle, big(100_000))
    # The newest client takes the shared copy (which fails), the oldest the original.
    assert got(acts, c2) == [(T.WORK_FAIL, handle)]
    assert got(acts, c1) == [(T.WORK_COMPLETE, handle + b"\0<spool 100000>")]
    assert handle.decode() in caplog.text


def test_spool_limit_refuses_a_submission_that_would_pass_it(make):
    h = make(max_spool_bytes=1000)
    c, w = h.conn(), h.worker(b"f")
    first = h.submit(c, b"f", b"", h.spool.new(600), ptype=T.SUBMIT_JOB_BG)
    acts = h.send(c, T.SUBMIT_JOB_BG, b"f", b"", h.spool.new(500))
    assert got(acts, c) == [(T.ERROR, b"QUEUE_ERROR\0Spool is full (--max-spool-bytes)")]
    h.submit(c, b"f", b"", b"small data does not count", ptype=T.SUBMIT_JOB_BG)
    assert h.core.spool_bytes == 600
    # Coalescing keeps nothing more; the job ending frees its part.
    h.send(c, T.SUBMIT_JOB_BG, b"f", b"", h.spool.new(700))
    h.grab(w)
    h.send(w, T.WORK_COMPLETE, first, b"")
    assert h.core.spool_bytes == 0
    h.submit(c, b"f", b"", h.spool.new(1000), ptype=T.SUBMIT_JOB_BG)
    assert h.core.spool_bytes == 1000
    h.grab(w)
    h.grab(w)
    for job in list(h.core.jobs.jobs.values()):
        h.send(w, T.WORK_COMPLETE, job.handle, b"")
    assert h.core.spool_bytes == 0 and len(h.core.jobs) == 0


def test_spool_limit_zero_means_none(make):
    h = make(max_spool_bytes=0)
    c, w = h.conn(), h.worker(b"f")
    handles = [h.submit(c, b"f", b"", h.spool.new((4 << 30) - 1000), ptype=T.SUBMIT_JOB_BG)
               for _ in range(3)]             # 12 GiB: past the default limit
    for handle in handles:
        h.grab(w)
        h.send(w, T.WORK_COMPLETE, handle, b"")
