"""The Python client and worker library, blocking and asyncio.

Client / AsyncClient submit jobs; Worker / AsyncWorker run them. Both sides
share one sans-IO core per connection (session.py, workersession.py) over
mpgearman.protocol; the I/O modules only move bytes.
"""
import logging

from .errors import (GearmanError, JobException, JobFailed, ProtocolError,
                     ServerUnavailable, Timeout, WorkFailed)
from .jobs import JobStatus, WorkData, WorkStatus, WorkWarning
from .aio import AsyncClient, AsyncJob
from .aioworker import AsyncWorker
from .sync import Client, Job
from .worker import Worker
from .workerjob import WorkerJob

# A library logs only where the application has configured logging.
logging.getLogger("mpgearman.client").addHandler(logging.NullHandler())

__all__ = ["Client", "Job", "Worker", "WorkerJob", "AsyncClient", "AsyncJob",
           "AsyncWorker", "GearmanError", "JobException", "JobFailed",
           "ProtocolError", "ServerUnavailable", "Timeout", "WorkFailed",
           "JobStatus", "WorkData", "WorkStatus", "WorkWarning"]
