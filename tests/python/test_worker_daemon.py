"""python_udfs.worker_daemon: the zip archives on the path when the daemon starts keep
their importers' directories; an archive added later (a job's --py-files) is re-read."""

import subprocess
import sys
import textwrap
import zipfile

PROBE = textwrap.dedent(
    """
    import importlib, sys, zipfile
    startup, later = sys.argv[1:3]
    sys.path.insert(0, startup)
    import python_udfs.worker_daemon  # the daemon's start: startup is on the path
    sys.path.insert(0, later)
    import first_in_startup, first_in_later  # their importers read the directories
    for archive, name in ((startup, "second_in_startup"), (later, "second_in_later")):
        with zipfile.ZipFile(archive, "a") as added:
            added.writestr(name + ".py", "")
    importlib.invalidate_caches()  # as PySpark's worker does at every task
    for name in ("second_in_startup", "second_in_later"):
        try:
            importlib.import_module(name)
            print(name, "found")
        except ModuleNotFoundError:
            print(name, "not found")
    """
)


def test_only_archives_added_after_the_start_are_read_again(tmp_path):
    archives = []
    for name in ("startup", "later"):
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as created:
            created.writestr(f"first_in_{name}.py", "")
        archives.append(str(archive))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *archives], capture_output=True, text=True, check=True
    )
    kept = sys.version_info < (3, 12)  # 3.12 re-reads lazily itself: nothing is changed
    assert done.stdout.split("\n")[:2] == [
        f"second_in_startup {'not found' if kept else 'found'}",
        "second_in_later found",
    ]
