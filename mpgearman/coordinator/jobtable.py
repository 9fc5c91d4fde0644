"""Jobs, job handles and the unique-id indexes.

Owns: the Job record, handle numbering (prefix:1, 2, ... never reused), the
handle -> job table, the per-function coalescing indexes (unique -> job and,
for unique "-", data -> job) and the cross-function unique index that
GET_STATUS_UNIQUE reads.
Must not: queue, assign or free jobs on its own, send anything, or touch
spool refs; the Core decides a job's life and calls in here to (un)index it.
"""
NORMAL = 1

# Job.indexed: how the job is reachable for coalescing.
NOT_INDEXED, BY_UNIQUE, BY_DATA = 0, 1, 2


class Job:
    __slots__ = (
        "handle", "fn", "unique", "data", "prio", "reducer",
        "num", "den", "retries",
        "ignore",      # abandoned or cancelled: freed when a worker reaches it
        "bg",          # submitted in the background ("queued" in show jobs)
        "keep",        # some background submission wants it: never abandoned
        "clients",     # attached foreground connections, oldest first (dups kept)
        "worker",      # the Conn running it, or None
        "timer",       # token of its CAN_DO_TIMEOUT deadline, 0 = none
        "when",        # epoch time while waiting in the epoch heap, else 0
        "indexed",
        "same_unique",  # older job with the same unique in another function
        "no",          # the handle's number
        "held",        # its status is mirrored in the shared status board
        "since",       # clock time it was last queued, then when it was assigned
        "logged",      # its SUBMIT is in the journal (durable/format.py) and no END yet
    )

    def __init__(self, handle, fn, unique, data, prio, bg, reducer):
        self.handle = handle
        self.fn = fn
        self.unique = unique
        self.data = data
        self.prio = prio
        self.reducer = reducer
        self.num = self.den = self.retries = 0
        self.ignore = False
        self.bg = self.keep = bg
        self.clients = []
        self.worker = None
        self.timer = 0
        self.when = 0
        self.indexed = NOT_INDEXED
        self.same_unique = None
        self.no = 0
        self.held = False
        self.since = 0
        self.logged = False

    def __repr__(self):
        return f"<Job {self.handle!r} {self.fn.name!r} unique={self.unique!r}>"


class JobTable:
    __slots__ = ("jobs", "by_unique", "_prefix", "count")

    def __init__(self, prefix: bytes):
        self.jobs: dict[bytes, Job] = {}
        # unique -> newest job holding it in any function; older ones chain
        # through Job.same_unique (almost always a chain of one).
        self.by_unique: dict[bytes, Job] = {}
        self._prefix = prefix + b":"
        self.count = 0          # jobs created so far = the last handle's number

    def __len__(self):
        return len(self.jobs)

    def new_handle(self) -> bytes:
        self.count += 1
        return b"%s%d" % (self._prefix, self.count)

    @staticmethod
    def find_twin(fn, unique: bytes, data) -> Job | None:
        """The job a submission coalesces with (PROTOCOL.md 3.4): same
        function and unique; for unique "-" byte-identical data. Empty
        uniques, "-" with empty data, and "-" with spooled data (the core
        cannot read it) never coalesce."""
        if not unique:
            return None
        if unique == b"-":
            if type(data) is bytes and data and fn.by_data:
                return fn.by_data.get(data)
            return None
        return fn.by_unique.get(unique) if fn.by_unique else None

    def add(self, job: Job) -> None:
        self.jobs[job.handle] = job
        unique = job.unique
        if unique:
            self._index(job, unique)

    def _index(self, job: Job, unique: bytes) -> None:
        fn = job.fn
        if unique == b"-":
            data = job.data
            if type(data) is bytes and data:
                if fn.by_data is None:
                    fn.by_data = {}
                fn.by_data[data] = job
                job.indexed = BY_DATA
            return
        if fn.by_unique is None:
            fn.by_unique = {}
        fn.by_unique[unique] = job
        job.indexed = BY_UNIQUE
        job.same_unique = self.by_unique.get(unique)
        self.by_unique[unique] = job

    def remove(self, job: Job) -> None:
        del self.jobs[job.handle]
        if job.indexed:
            self.unindex(job)

    def unindex(self, job: Job) -> None:
        """Make the job unreachable for coalescing and GET_STATUS_UNIQUE (it
        stays in the handle table)."""
        kind, job.indexed = job.indexed, NOT_INDEXED
        if kind == BY_DATA:
            del job.fn.by_data[job.data]
        elif kind == BY_UNIQUE:
            unique = job.unique
            del job.fn.by_unique[unique]
            head = self.by_unique[unique]
            if head is job:
                if job.same_unique is None:
                    del self.by_unique[unique]
                else:
                    self.by_unique[unique] = job.same_unique
            else:
                while head.same_unique is not job:
                    head = head.same_unique
                head.same_unique = job.same_unique
            job.same_unique = None

    def get_unique(self, unique: bytes) -> Job | None:
        """Newest job with this unique in any function (gearmand answers the
        first match of its hash chain, also the newest)."""
        return self.by_unique.get(unique)
