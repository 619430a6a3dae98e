"""What every Snakemake job script does around its one library call: threads, log, errors."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path


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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _limit_threads(threads: int) -> None:
    """The rule's thread count for every numerical library. numpy's BLAS reads the variables
    when numpy loads, which a job's imports do before the job starts: without the limit it takes
    every core (a 50 x 64 SVD ran 8x slower with 2 threads than with 1 beside another job). A
    job whose code imports torch (its science modules do so at the top, before the job starts)
    gets torch configured here; a job that never imports torch (tables, markers, figures) does
    not pay the second it takes."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(max(1, int(threads)))
    if "numpy" in sys.modules:  # its BLAS read those variables when it loaded: limit it now
        from threadpoolctl import threadpool_limits

        threadpool_limits(max(1, int(threads)))
    if "torch" in sys.modules:
        from alignlab.runtime import configure_torch

        configure_torch(threads)


@contextlib.contextmanager
def job(snakemake):
    """Set torch threads to the rule's `threads`; tee stdout/stderr to its log; log tracebacks."""
    _limit_threads(snakemake.threads)
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
