"""What every Snakemake job script does around its one library call: threads, log, errors."""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path

from alignlab.runtime import configure_torch


class _Tee:
    """Write to the console and to the rule's log file at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()

    def isatty(self):
        return False


@contextlib.contextmanager
def job(snakemake):
    """Set torch threads to the rule's `threads`; tee stdout/stderr to its log; log tracebacks."""
    configure_torch(snakemake.threads)
    log_path = Path(snakemake.log[0]) if snakemake.log else None
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
        try:
            yield
        except BaseException:
            log.write(traceback.format_exc())
            raise
        finally:
            sys.stdout, sys.stderr = out, err
