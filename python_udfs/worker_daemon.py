"""PySpark's Python worker daemon, with tasks that start without re-reading zip archives.

Used as ``spark.python.daemon.module: python_udfs.worker_daemon`` (the local
profile targets set it). PySpark's worker calls ``importlib.invalidate_caches()``
at the start of every task; on Python 3.10 and 3.11 that re-reads the whole
directory of every zip archive on ``sys.path`` (CPython gh-103200, fixed in 3.12):
the ``pyspark.zip``, py4j's zip and Spark's core jar Spark puts there: more than
a whole task of a small Spark job (docs/performance.md). The
archives on ``sys.path`` when the daemon starts are Spark's and Python's own and
do not change while it runs: their importers keep the directory they read. An
archive added later (a job's ``--py-files``) is invalidated as before.

Everything else is PySpark's ``pyspark.daemon``, which forks a worker per
connection: the workers inherit the change.
"""

from __future__ import annotations

import sys
import zipimport

# the archives Spark and Python put on the path before the daemon started
STARTUP_ARCHIVES = frozenset(path for path in sys.path if path.endswith((".zip", ".jar")))


def keep_startup_archives(invalidate_caches):
    """``zipimporter.invalidate_caches`` that leaves the importers of ``STARTUP_ARCHIVES`` as they are."""

    def invalidate_unless_startup_archive(importer):
        if importer.archive not in STARTUP_ARCHIVES:
            invalidate_caches(importer)

    return invalidate_unless_startup_archive


if sys.version_info < (3, 12):
    zipimport.zipimporter.invalidate_caches = keep_startup_archives(
        zipimport.zipimporter.invalidate_caches
    )

if __name__ == "__main__":
    from pyspark import daemon

    daemon.manager()
