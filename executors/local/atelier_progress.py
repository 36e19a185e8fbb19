# Progress helper for `local` modules written in Python: reports progress, metrics and outputs to Atelier as
# JSON lines on the fd named by ATELIER_PROGRESS_FD (metric numbers as bytes after their line where the host reads
# frames). Standard library only: copy it into your module.
import array
import atexit
import base64
import json
import math
import os
import sys
import time

_fd_text = os.environ.get("ATELIER_PROGRESS_FD", "")
_fd = int(_fd_text) if _fd_text.isdigit() else None
_warned = False


def _send(message, raw=b""):
    """Write one message line (and the raw bytes of a frame after it) in one write."""
    global _warned
    if _fd is None:
        if not _warned:
            print("atelier progress: ATELIER_PROGRESS_FD is not set; progress, metrics and outputs are not reported",
                  file=sys.stderr)
            _warned = True
        return
    data = (json.dumps(message, default=str) + "\n").encode("utf-8") + raw
    while data:
        data = data[os.write(_fd, data):]


# Metric points are buffered and sent in batches (every _FLUSH_POINTS points, or on the first call _FLUSH_SECONDS
# after the batch began, before any other message and at exit), so logging every training step stays cheap. A batch
# is one `series` line: per metric name its steps and values. Where the host reads them packed (it sets
# ATELIER_PROGRESS_PACKED), they go as two little-endian float64 arrays in base64 (`stepsF64`, `valuesF64`; a step
# of NaN: none given), so no float is formatted as text; where it also sets ATELIER_PROGRESS_FRAMES, as raw bytes
# after the line instead (a frame: `{"frame": BYTES, "series": [{name, stepsAt, valuesAt, count}]}` and then BYTES
# bytes, each array at its byte offset); otherwise (an older host) as two JSON lists, as before.
# Points of one name keep their order. A value that is no number is sent as it is, for the host to drop and name in
# the task's log.
_FLUSH_POINTS = 1000
_FLUSH_SECONDS = 0.2
_PACKED = os.environ.get("ATELIER_PROGRESS_PACKED") == "1"
_FRAMES = _PACKED and os.environ.get("ATELIER_PROGRESS_FRAMES") == "1"
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_series = {}
_buffered = 0
_batch_began = 0.0


def _number(value):
    """The value as a float (numbers of other libraries, numpy or torch scalars, too), or None if it is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _SPECIAL.get(value)
    if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return None
    try:
        return float(value)
    except OverflowError:  # an int past float's range, as JSON's reader would take it
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


def _wire(value):
    # JSON has no NaN or Infinity: they travel as strings and are stored as the numbers they are.
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _little_endian(floats):
    if sys.byteorder != "little":
        floats = array.array("d", floats)
        floats.byteswap()
    return floats.tobytes()


def _packed(floats):
    return base64.b64encode(_little_endian(floats)).decode("ascii")


def flush():
    """Send the buffered metric points now."""
    global _series, _buffered
    if not _buffered:
        return
    batch = []
    raw = []
    at = 0
    for name, (steps, values, odd) in _series.items():
        if values and _FRAMES:
            raw += [_little_endian(steps), _little_endian(values)]
            batch.append({"name": name, "stepsAt": at, "valuesAt": at + 8 * len(values), "count": len(values)})
            at += 16 * len(values)
        elif values and _PACKED:
            batch.append({"name": name, "stepsF64": _packed(steps), "valuesF64": _packed(values)})
        elif values:
            batch.append({"name": name, "steps": [s if math.isfinite(s) else None for s in steps],
                          "values": [_wire(v) for v in values]})
        if odd:
            batch.append({"name": name, "steps": [s for s, _ in odd], "values": [v for _, v in odd]})
    _series, _buffered = {}, 0
    if raw:
        _send({"frame": at, "series": batch}, b"".join(raw))
    else:
        _send({"series": batch})


atexit.register(flush)


def progress(fraction, message=None):
    """Report progress: a fraction in [0, 1] (or None when unknown) and an optional message."""
    flush()
    _send({"progress": fraction, "message": message})


def metric(metrics, step=None):
    """Report metrics (a dict of name to number; NaN and ±Infinity are kept), optionally at a training step."""
    global _batch_began
    if not _buffered:
        _batch_began = time.monotonic()
    at = _number(step)
    at = math.nan if at is None else at
    for name, value in metrics.items():
        _add(name, at, value)
    if _buffered >= _FLUSH_POINTS or time.monotonic() - _batch_began >= _FLUSH_SECONDS:
        flush()


def metric_series(name, steps, values):
    """Report many points of one metric at once (a loop that has them in lists or arrays): values[i] at training
    step steps[i], or at none when steps is None. The same rules as metric() for each point."""
    global _batch_began
    values = list(values)
    steps = [None] * len(values) if steps is None else list(steps)
    if len(steps) != len(values):
        raise ValueError(f"metric_series({name!r}): {len(steps)} steps for {len(values)} values")
    if not _buffered:
        _batch_began = time.monotonic()
    for step, value in zip(steps, values):
        at = _number(step)
        _add(name, math.nan if at is None else at, value)
        if _buffered >= _FLUSH_POINTS:
            flush()
    if time.monotonic() - _batch_began >= _FLUSH_SECONDS:
        flush()


def _add(name, at, value):
    global _buffered
    s = _series.get(name)
    if s is None:
        s = _series[name] = (array.array("d"), array.array("d"), [])
    number = _number(value)
    if number is None:
        s[2].append((at if math.isfinite(at) else None, value))
    else:
        s[0].append(at)
        s[1].append(number)
    _buffered += 1


def output(name, value):
    """Record a named output (any JSON value); it flows to downstream tasks as an input."""
    flush()
    _send({"output": {"name": name, "value": value}})


def register_model(model, output, flavor=None, signature=None, metadata=None):
    """Ask Atelier to register an output (or a folder of logged artifacts) as a version of model ("namespace/name")
    once the task has succeeded, as the run's creator. The same content registered again is the version already
    there; a refusal is written to the task's log."""
    flush()
    _send({"register": {"model": model, "output": output, "flavor": flavor, "signature": signature,
                        "metadata": metadata}})
