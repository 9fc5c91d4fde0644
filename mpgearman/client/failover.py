"""What happens to jobs and requests when a connection to a server is lost.

It owns the failure semantics shared by the blocking and asyncio clients:

- a submission not yet acknowledged (no JOB_CREATED) is placed again on
  another server, transparently; a job may be placed at most
  `retries` + number of servers times in all before it fails;
- a foreground job whose server drops after JOB_CREATED is submitted
  again (same unique) to another server, up to `retries` times in total,
  then it ends with ServerUnavailable; a job that already streamed result
  bytes to a file is not run again (the file would get them twice);
- any other outstanding request (echo, status) ends with ServerUnavailable;
- a background job is done once JOB_CREATED arrived: nothing to redo.

Every job ends with exactly one outcome. It must not do I/O: the caller
places the returned jobs.
"""
from .errors import ServerUnavailable
from .jobs import JobState
from .servers import ServerPool
from .session import Session


def lost_connection(session: Session, pool: ServerPool, retries: int,
                    reason: str) -> list[JobState]:
    """Mark the server down and settle everything the session held.
    Returns the jobs to place again."""
    pool.mark_down(session.address, reason)
    unacked, created, others = session.lost()
    message = f"lost connection to job server {session.address}: {reason}"
    again = []
    for job in unacked:
        if may_place(job, pool, retries):
            again.append(job)
        else:
            job.fail(ServerUnavailable(f"{message} (job placed {job.placements} times)"))
    for job in created:
        if job.can_resubmit(retries):
            job.resubmissions += 1
            again.append(job)
        elif job.streamed:
            job.fail(ServerUnavailable(f"{message} (after {job.streamed} result bytes "
                                       f"were written; not run again)"))
        else:
            job.fail(ServerUnavailable(f"{message} (retried {job.resubmissions} times)"))
    for req in others:
        req.finish(error=ServerUnavailable(message))
    return again


def may_place(job: JobState, pool: ServerPool, retries: int) -> bool:
    return job.placements < retries + len(pool.states)
