"""numpy, loaded without OpenBLAS's pool of threads.

Search never multiplies matrices, yet importing numpy starts a BLAS thread per core that
keeps spinning for a while after each use of the library, on the cores the compressors
need. One BLAS thread is none at all. A user who set ``OPENBLAS_NUM_THREADS`` is left
alone.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy  # noqa: E402

np = numpy
