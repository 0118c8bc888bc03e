"""Gunicorn settings for `gunicorn -c gunicorn.conf.py wsgi:app`, read from the environment.

WEB_CONCURRENCY   worker processes (default: 2 x CPU cores + 1, at most MAX_DEFAULT_WORKERS)
GUNICORN_BIND     address(es) to listen on, comma-separated (default 127.0.0.1:8000)
GUNICORN_TIMEOUT  seconds a worker may spend on one request before it is restarted (default 60)

Anything else can be given on the command line or in GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

# each worker keeps its own database connection pool; more workers than this per machine
# mostly add PostgreSQL connections, not throughput
MAX_DEFAULT_WORKERS = 12


def _default_workers():
    return min(2 * multiprocessing.cpu_count() + 1, MAX_DEFAULT_WORKERS)


workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers())
bind = [
    address.strip()
    for address in (os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000").split(",")
    if address.strip()
]

# sync workers: every request is short, long work runs in the job worker
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
# a worker is replaced after this many requests, so that slow memory growth cannot pile up
max_requests = 1000
max_requests_jitter = 100

# off: each worker builds the app itself after the fork, so no database connection is ever
# shared between processes, and a restarted worker picks up changed code
preload_app = False

# the heartbeat file is touched constantly; on a disk it can stall a worker (a file of the
# worker's own, created and removed by gunicorn, so a shared memory folder is safe)
SHARED_MEMORY = "/dev/shm"  # noqa: S108
if os.path.isdir(SHARED_MEMORY):
    worker_tmp_dir = SHARED_MEMORY

# the control socket defaults to one path per user account, which two servers on one machine
# would fight over; it is opt-in here
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None

accesslog = "-"
errorlog = "-"
loglevel = "info"
# client as the load balancer reports it, peer address, worker pid, request, status, size, time
access_log_format = '%({x-forwarded-for}i)s %(h)s %(p)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
proc_name = "certification"
