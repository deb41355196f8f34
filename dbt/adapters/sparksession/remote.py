"""``method: connect``: dbt as a thin client of a Spark Connect server.

SQL and DataFrame plans go to the server; Python models run their driver-side
code (here: e×e numpy) in this process and their ``mapInArrow`` functions in
the server's Python workers, which import the packages of ``py_packages``
from zips this client ships as artifacts of the session.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

from dbt.adapters.exceptions.connection import FailedToConnectError
from dbt_common.exceptions import DbtRuntimeError

__all__ = ["connect_session", "package_zip", "redacted"]

#: One session per URL for this process (dbt's threads share it), with its artifacts shipped.
_SESSIONS: dict[str, object] = {}
_LOCK = threading.Lock()


def redacted(url: str) -> str:
    """A Spark Connect URL as logs and messages show it: its bearer token's value
    (``;token=…``, a managed endpoint's personal access token) replaced by ``***``."""
    return re.sub(r"(;token=)[^;]*", r"\1***", url, flags=re.IGNORECASE)


def connect_session(credentials):
    """Return the Spark Connect session of ``credentials`` (created once per process).

    Raises
    ------
    FailedToConnectError
        If the server does not answer within ``connect_retries`` retries: the
        message names the URL and gRPC's reason, not a stack trace.
    """
    url = credentials.host
    with _LOCK:
        if url not in _SESSIONS:
            session = _reachable_session(url, credentials.connect_retries)
            _apply_parameters(session, credentials.server_side_parameters, url)
            with tempfile.TemporaryDirectory(prefix="dbt-sparksession-") as folder:
                for package in credentials.py_packages:
                    archive = package_zip(package, Path(folder))
                    session.addArtifacts(str(archive), pyfile=True)
            _SESSIONS[url] = session
        return _SESSIONS[url]


def _reachable_session(url: str, retries: int):
    """A Connect session on ``url`` whose server has answered one request.

    The client retries an unreachable server with exponential backoff for at
    least ten minutes by default; the first request here retries only
    ``retries`` times, then the default policy is restored for the run (a
    network blip during a long job should still be retried).
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client.retries import DefaultPolicy

    try:
        # pyspark's own builder also puts this process in Connect mode (is_remote()),
        # so pyspark.sql.functions build Connect expressions in the Python models
        session = SparkSession.builder.remote(url).create()
    except (PySparkException, ValueError) as exc:
        raise FailedToConnectError(f"invalid Spark Connect URL {redacted(url)}: {exc}") from None
    client = session.client
    policies = client.get_retry_policies()
    client.set_retry_policies(
        [DefaultPolicy(max_retries=retries, initial_backoff=500, max_backoff=5000)]
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RETRIES_EXCEEDED: said below, with the URL
            session.version  # noqa: B018 - one round trip to the server
    except Exception as exc:  # noqa: BLE001 - any failure of the first request is reported
        # closed, the client skips its clean-up requests at exit (retried for minutes)
        client.close()
        raise FailedToConnectError(
            f"cannot reach the Spark Connect server at {redacted(url)} ({_grpc_reason(exc)}). "
            "Is the server running and the URL (and its token) right? The connect target "
            "reads it from SPARK_REMOTE."
        ) from None
    finally:
        client.set_retry_policies(policies)
    return session


def _grpc_reason(error: Exception) -> str:
    """The status and details of a gRPC error (its str() is a multi-line dump).

    pyspark raises its own exception with the gRPC one as its context.
    """
    for cause in (error, error.__cause__, error.__context__):
        if callable(getattr(cause, "code", None)) and callable(getattr(cause, "details", None)):
            return f"{cause.code().name}: {cause.details()}"
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _apply_parameters(session, parameters: dict[str, str], url: str) -> None:
    """Set the profile's ``server_side_parameters`` on the remote session.

    Only runtime settings can be set from a client; the others (master,
    warehouse, metastore, memory) are the server's own configuration.
    """
    from pyspark.errors import PySparkException

    for key, value in parameters.items():
        try:
            session.conf.set(key, value)
        except PySparkException as exc:
            raise DbtRuntimeError(
                f"server_side_parameters: {key} cannot be set by a client of the Spark "
                f"Connect server at {redacted(url)}; set it in the server's configuration "
                f"({str(exc).splitlines()[0]})"
            ) from None


def package_zip(package: str, folder: Path) -> Path:
    """Zip the importable ``package`` (its folder, as installed here) into ``folder``.

    Raises
    ------
    DbtRuntimeError
        If ``package`` is not an importable package of this Python.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DbtRuntimeError(
            f"py_packages: {package!r} is not an importable package of this Python "
            "(the connect target ships each one to the server's Python workers)"
        )
    source = Path(next(iter(spec.submodule_search_locations)))
    archive = folder / f"{package}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(source.parent))
    return archive
