"""The class-data-sharing archive that local Spark sessions map (dbt.adapters.sparksession.class_archive)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dbt.adapters.sparksession import class_archive


@pytest.fixture
def archive_in(tmp_path, monkeypatch):
    """Point the archive at a file of tmp_path (not made yet)."""
    path = tmp_path / "cache" / "spark.jsa"
    monkeypatch.setattr(class_archive, "archive_path", lambda: path)
    return path


def test_without_an_archive_the_parameters_are_unchanged(archive_in):
    parameters = {"spark.driver.extraJavaOptions": "-XX:+UseParallelGC"}
    assert class_archive.with_archive(parameters) == parameters


def test_an_archive_is_mapped_after_the_profiles_own_java_options(archive_in):
    archive_in.parent.mkdir()
    archive_in.write_bytes(b"made")
    parameters = {"spark.master": "local[2]", "spark.driver.extraJavaOptions": "-XX:+UseParallelGC"}
    extended = class_archive.with_archive(parameters)
    assert extended["spark.driver.extraJavaOptions"] == (
        f"-XX:+UseParallelGC -XX:SharedArchiveFile={archive_in} {class_archive.QUIET}"
    )
    assert extended["spark.master"] == "local[2]"
    assert parameters["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"  # not modified
    # a profile that names an archive of its own keeps it
    own = {"spark.driver.extraJavaOptions": "-XX:SharedArchiveFile=/elsewhere.jsa"}
    assert class_archive.with_archive(own) == own


def fake_java(folder, mtime_ns: int):
    java = folder / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    os.utime(java, ns=(mtime_ns, mtime_ns))
    return java


def test_each_java_install_and_update_has_its_own_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    java = fake_java(tmp_path / "jdk", 1_000_000_000)
    other = fake_java(tmp_path / "other-jdk", 1_000_000_000)
    paths = []
    for home in (java, other, java):
        monkeypatch.setenv("JAVA_HOME", str(home.parents[1]))
        paths.append(class_archive.archive_path())
    assert paths[0].parent == tmp_path / "cache" / "dbt-sparksession"
    assert paths[0] != paths[1] and paths[0] == paths[2]
    os.utime(java, ns=(2_000_000_000, 2_000_000_000))  # the same path, updated
    monkeypatch.setenv("JAVA_HOME", str(java.parents[1]))
    assert class_archive.archive_path() not in paths
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert class_archive.archive_path() is None
    assert class_archive.with_archive({"a": "b"}) == {"a": "b"}


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    """A real dynamic archive of a JVM that only printed its version (seconds to make)."""
    path = tmp_path_factory.mktemp("jsa") / "version.jsa"
    subprocess.run(
        [
            class_archive.java_executable(),
            f"-XX:ArchiveClassesAtExit={path}",
            *class_archive.QUIET.split(),
            "-version",
        ],
        check=True,
        capture_output=True,
    )
    return path


def workload_writing(content: bytes):
    """subprocess.run for create(): the workload child writes `content` as its dump."""
    real_run = subprocess.run

    def run(command, **kwargs):
        if "--workload" in command:
            with open(command[-1], "wb") as dump:
                dump.write(content)
            return subprocess.CompletedProcess(command, 0, "", "")
        return real_run(command, **kwargs)

    return run


def test_a_truncated_archive_is_never_published(archive_in, small_archive, monkeypatch):
    truncated = small_archive.read_bytes()[:100_000]
    # what a JVM does with it: abort (this is why it must never be published)
    dump = archive_in.parent / "truncated.jsa"
    dump.parent.mkdir()
    dump.write_bytes(truncated)
    aborted = subprocess.run(
        [
            class_archive.java_executable(),
            f"-XX:SharedArchiveFile={dump}",
            *class_archive.QUIET.split(),
            "-version",
        ],
        capture_output=True,
        cwd=dump.parent,
        check=False,
    )
    assert aborted.returncode != 0
    dump.unlink()
    for leftover in dump.parent.glob("hs_err*"):
        leftover.unlink()

    monkeypatch.setattr(class_archive.subprocess, "run", workload_writing(truncated))
    monkeypatch.chdir(archive_in.parent)
    with pytest.raises(SystemExit, match="was not usable: not published"):
        class_archive.create(archive_in)
    # neither published nor left behind, nor the aborted JVM's error file
    assert list(archive_in.parent.iterdir()) == []


def test_a_complete_archive_is_published_under_its_name(archive_in, small_archive, monkeypatch):
    monkeypatch.setattr(
        class_archive.subprocess, "run", workload_writing(small_archive.read_bytes())
    )
    assert class_archive.create(archive_in) == archive_in
    assert archive_in.read_bytes() == small_archive.read_bytes()
    record = archive_in.with_suffix(".json")  # what it was made for: pruned when that is gone
    assert sorted(p.name for p in archive_in.parent.iterdir()) == [archive_in.name, record.name]
    assert json.loads(record.read_text()) == class_archive.install()
    assert not class_archive.is_stale(class_archive.install())


def test_archives_of_installs_gone_or_updated_are_removed(tmp_path):
    java = fake_java(tmp_path / "jdk", 1_000_000_000)
    jars = tmp_path / "pyspark" / "jars"
    jars.mkdir(parents=True)
    current = {
        "java": str(java),
        "java_mtime_ns": 1_000_000_000,
        "jars": str(jars),
        "jars_mtime_ns": jars.stat().st_mtime_ns,
        "pyspark": "4.3.0",
    }
    records = {
        "current": current,
        "java-gone": {**current, "java": str(tmp_path / "old-jdk" / "bin" / "java")},
        "java-updated": {**current, "java_mtime_ns": 500},
        "jars-gone": {**current, "jars": str(tmp_path / "old-venv" / "jars")},
        "jars-upgraded": {**current, "jars_mtime_ns": current["jars_mtime_ns"] - 1},
    }
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, made_for in records.items():
        (cache / f"{name}.jsa").write_bytes(b"archive")
        (cache / f"{name}.json").write_text(json.dumps(made_for))
    (cache / "unrecorded.jsa").write_bytes(b"made before records")
    (cache / "unreadable.jsa").write_bytes(b"archive")
    (cache / "unreadable.json").write_text("{not json")

    removed = class_archive.prune(cache)
    assert sorted(p.name for p in removed) == [
        "jars-gone.jsa",
        "jars-upgraded.jsa",
        "java-gone.jsa",
        "java-updated.jsa",
    ]
    assert sorted(p.name for p in cache.iterdir()) == [
        "current.jsa",
        "current.json",
        "unreadable.jsa",
        "unreadable.json",
        "unrecorded.jsa",
    ]


def test_a_failing_workload_says_why(archive_in, monkeypatch):
    def failing(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "Traceback ...\nJAVA_GATEWAY_EXITED")

    monkeypatch.setattr(class_archive.subprocess, "run", failing)
    with pytest.raises(SystemExit, match="(?s)workload failed \\(exit 1\\).*JAVA_GATEWAY_EXITED"):
        class_archive.create(archive_in)
    assert not archive_in.exists()


MAPPED = """
import subprocess, sys
from dbt.adapters.sparksession.connections import spark_session
home = sys.argv[1]
session = spark_session({
    "spark.master": "local[1]", "spark.ui.enabled": "false",
    "spark.sql.warehouse.dir": home + "/warehouse",
    "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
})
pid = session.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
print(subprocess.run(["jcmd", str(pid), "VM.info"], capture_output=True, text=True, check=True).stdout)
"""


def test_a_local_session_maps_the_archive_setup_made(tmp_path):
    """`make setup` makes the archive of this Java and Spark; the adapter's local
    sessions map all of it (the JVM's own report of what it mapped)."""
    path = class_archive.archive_path()
    assert path is not None and path.is_file(), (
        f"no class archive at {path}: `make setup` makes it (python -m {class_archive.MODULE})"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYSPARK_GATEWAY_PORT"}
    report = subprocess.run(
        [sys.executable, "-c", MAPPED, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert f"-XX:SharedArchiveFile={path}" in report
    mapped = next(
        line for line in report.splitlines() if line.startswith("CDS archive(s) mapped at")
    )
    # the JDK's base archive plus ours: more than ours alone
    mapped_bytes = int(mapped.split("size ")[1].split(",")[0])
    assert mapped_bytes > path.stat().st_size, mapped
