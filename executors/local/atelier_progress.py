# Progress helper for `local` modules written in Python: reports progress, metrics and outputs to Atelier as
# JSON lines on the fd named by ATELIER_PROGRESS_FD. Standard library only: copy it into your module.
import json
import os
import sys

_fd_text = os.environ.get("ATELIER_PROGRESS_FD", "")
_fd = int(_fd_text) if _fd_text.isdigit() else None
_warned = False


def _send(message):
    global _warned
    if _fd is None:
        if not _warned:
            print("atelier progress: ATELIER_PROGRESS_FD is not set; progress, metrics and outputs are not reported",
                  file=sys.stderr)
            _warned = True
        return
    data = (json.dumps(message, default=str) + "\n").encode("utf-8")
    while data:
        data = data[os.write(_fd, data):]


def progress(fraction, message=None):
    """Report progress: a fraction in [0, 1] (or None when unknown) and an optional message."""
    _send({"progress": fraction, "message": message})


def metric(metrics, step=None):
    """Report numeric metrics (a dict of name to number), optionally at a training step."""
    _send({"metrics": metrics, "step": step})


def output(name, value):
    """Record a named output (any JSON value); it flows to downstream tasks as an input."""
    _send({"output": {"name": name, "value": value}})
