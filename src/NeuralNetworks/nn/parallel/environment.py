"""Is this process one of several started by an MPI launcher? Read from the environment alone, so a plain run
never imports mpi4py (nor initialises MPI).

Launchers say so in variables they set before the program starts: MPICH's and Intel MPI's ``mpiexec`` and
Slurm's ``srun --mpi=pmi2`` set ``PMI_SIZE``/``PMI_RANK``, Open MPI's ``mpirun`` ``OMPI_COMM_WORLD_SIZE``/
``OMPI_COMM_WORLD_RANK``, MVAPICH ``MV2_COMM_WORLD_*``, and ``srun --mpi=pmix`` ``PMIX_RANK`` with Slurm's
``SLURM_STEP_NUM_TASKS``. ``NEURALNETWORKS_ENGINE`` overrides the guess: ``mpi`` always starts the MPI engine
(for a launcher not listed here), ``none`` never does (to run independent copies under one launcher).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENGINE_VARIABLE = "NEURALNETWORKS_ENGINE"
ENGINE_CHOICES = ("auto", "mpi", "none")
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")
PMIX_SIZE_VARIABLE = "SLURM_STEP_NUM_TASKS"  # PMIx itself publishes no size variable; srun does
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


class EngineChoiceError(ValueError):
    """``NEURALNETWORKS_ENGINE`` holds a value other than ``ENGINE_CHOICES``: raised only where an engine is
    chosen (training, evaluating), never by a command that needs none."""


def _first_int(environ: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes the launcher started (1 when not started by one)."""
    environ = os.environ if environ is None else environ
    size = _first_int(environ, SIZE_VARIABLES)
    if size is None and "PMIX_RANK" in environ:
        size = _first_int(environ, (PMIX_SIZE_VARIABLE,))
    return size or 1


def launched_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank as the launcher numbered it (0 when not started by one)."""
    return _first_int(os.environ if environ is None else environ, RANK_VARIABLES) or 0


def local_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes of the job run on this machine, as the launcher says (1 when it does not say)."""
    return _first_int(os.environ if environ is None else environ, LOCAL_SIZE_VARIABLES) or 1


def cores_per_process(environ: Mapping[str, str] | None = None) -> int:
    """This process's share of the machine's cores: BLAS threads beyond it would fight the other processes."""
    return max(1, (os.cpu_count() or 1) // local_size(environ))


def engine_choice(environ: Mapping[str, str] | None = None) -> str:
    """"mpi" when training should be data-parallel over MPI, else "none"."""
    environ = os.environ if environ is None else environ
    choice = environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ENGINE_CHOICES:
        raise EngineChoiceError(f"the environment variable {ENGINE_VARIABLE} must be one of "
                                f"{', '.join(ENGINE_CHOICES)}. Received: {choice[:40]!r} (unset it for the "
                                "automatic choice)")
    if choice == "auto":
        return "mpi" if launched_size(environ) > 1 else "none"
    return choice


def is_parallel_job(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``fit`` will train data-parallel over several processes."""
    return engine_choice(environ) == "mpi"


def is_root_process(environ: Mapping[str, str] | None = None) -> bool:
    """True for the process that prints and writes files: rank 0, or the only process. Never raises: with an
    unknown ``NEURALNETWORKS_ENGINE`` (refused where an engine is needed), the launcher's word decides."""
    try:
        parallel = is_parallel_job(environ)
    except EngineChoiceError:
        parallel = launched_size(environ) > 1
    return not parallel or launched_rank(environ) == 0
