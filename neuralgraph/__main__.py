"""``python -m neuralgraph`` and the ``neuralgraph`` console script: the command line as a program."""

import gc

from neuralgraph._tools.cli import main


def run() -> int:
    """Run the command line (:func:`neuralgraph._tools.cli.main`) as a program, and return its status.

    Before the interpreter exits, every object left is frozen out of the garbage collector's reach
    (``gc.freeze``): Python's finalisation otherwise runs one last full collection over them all,
    numba's and LLVM's included, 0.05 s or a tenth of a short render's CPU, only to find that
    everything is still referenced. Exit handlers run and modules are torn down as before.
    """
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":
    raise SystemExit(run())
