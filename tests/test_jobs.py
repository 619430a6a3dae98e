"""The per-job process policy (alignlab.jobs): the rule's threads for every numerical library,
torch configured only in jobs that load it."""

import subprocess
import sys
import textwrap

import pytest


def _run_job(body: str, threads: int = 1) -> str:
    """Run `body` inside alignlab.jobs.job in a fresh interpreter (thread settings are per process)
    and return what it prints."""
    code = textwrap.dedent(
        f"""
        import sys, types
        from alignlab.jobs import job
        sm = types.SimpleNamespace(threads={threads}, log=[])
        {body.strip().splitlines()[0]}
        with job(sm):
            {body.strip().splitlines()[1]}
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_job_that_never_imports_torch_does_not_load_it():
    body = """
    import os
    print('torch' in sys.modules, os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])
    """
    assert _run_job(body, threads=3) == "False 3 3"


@pytest.mark.parametrize("threads", [1, 2])
def test_a_job_whose_code_imports_torch_gets_the_rules_threads_and_flushed_denormals(threads):
    body = """
    import torch
    print(torch.get_num_threads(), torch.tensor([1e-40]).mul(1.0).item() == 0.0)
    """
    assert _run_job(body, threads=threads) == f"{threads} True"


def test_numpy_loaded_before_the_job_gets_the_rules_threads_for_its_blas():
    # a job script imports its science modules (and numpy) before the job sets the variables
    body = """
    import numpy, threadpoolctl
    print({pool['num_threads'] for pool in threadpoolctl.threadpool_info()})
    """
    assert _run_job(body, threads=1) == "{1}"
