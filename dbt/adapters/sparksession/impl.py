"""The ``sparksession`` adapter: dbt-spark's adapter with in-process Python models."""

from __future__ import annotations

import threading

from dbt.adapters.base import BaseRelation, PythonJobHelper, available
from dbt.adapters.contracts.connection import AdapterResponse
from dbt.adapters.events.logging import AdapterLogger
from dbt.adapters.spark.impl import SparkAdapter
from dbt_common.exceptions import DbtRuntimeError

from dbt.adapters.sparksession import audits, build_lock, publication
from dbt.adapters.sparksession.connections import SparksessionConnectionManager, open_ahead
from dbt.adapters.sparksession.cursor import sql_literal
from dbt.adapters.sparksession.python_submissions import SessionPythonJobHelper

logger = AdapterLogger("Spark")
#: The schemas whose build lock an invocation of this process has taken: a later one
#: refreshes their tables after taking it (build_lock.refresh_tables).
_LOCKED_BEFORE_IN_THIS_PROCESS: set[str] = set()

#: Results of :meth:`SparksessionAdapter.query_once`, for one dbt invocation at a time.
_QUERY_RESULTS: dict[tuple[str, str], object] = {}
_QUERY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_QUERY_GUARD = threading.Lock()


class SparksessionAdapter(SparkAdapter):
    ConnectionManager = SparksessionConnectionManager

    def __init__(self, config, mp_context) -> None:
        super().__init__(config, mp_context)
        # dbt makes its adapter before it parses the project: Spark starts meanwhile
        open_ahead(config.credentials, invoked_command())

    @property
    def default_python_submission_method(self) -> str:
        return "session"

    @property
    def python_submission_helpers(self) -> dict[str, type[PythonJobHelper]]:
        return {**super().python_submission_helpers, "session": SessionPythonJobHelper}

    def list_relations_without_caching(self, schema_relation: BaseRelation) -> list[BaseRelation]:
        """The schema's relations, without the session's temporary views.

        ``show table extended in <schema>`` also lists the session's temporary
        views (dbt-spark's incremental materialization leaves ``<model>__dbt_tmp``
        ones), with no schema. In a session that has built models, dbt's catalog
        (``dbt docs generate``) failed on them: ``'NoneType' object has no
        attribute 'lower'``. They belong to no schema, so they are left out.
        """
        relations = super().list_relations_without_caching(schema_relation)
        return [relation for relation in relations if relation.schema]

    @available
    def query_once(self, sql: str):
        """The rows of a read-only query, run once per dbt invocation (agate table).

        For the metadata several nodes of one build ask at compile time (the base
        version, the drift alerts): the first caller runs the query, the others,
        in any thread, get its rows. Only for queries whose answer cannot change
        during the invocation, or must not (a build resolves its base version
        once). A new invocation (the next build of a backfill) asks again.
        """
        from dbt_common.invocation import get_invocation_id

        key = (get_invocation_id(), sql)
        with _QUERY_GUARD:
            for stale in [k for k in _QUERY_LOCKS if k[0] != key[0]]:
                _QUERY_LOCKS.pop(stale)
                _QUERY_RESULTS.pop(stale, None)
            lock = _QUERY_LOCKS.setdefault(key, threading.Lock())
        with lock:
            if key not in _QUERY_RESULTS:
                _QUERY_RESULTS[key] = self.execute(sql, fetch=True)[1]
            return _QUERY_RESULTS[key]

    @available
    def query_column_types(self, sql: str, described_as: str) -> dict[str, str]:
        """{column name, lower case: Spark SQL type} of a query's result, without running it.

        Spark analyses the query (``describe query``): a query it cannot parse
        or resolve (an unknown relation or column, a bad filter) raises a
        DbtRuntimeError that starts with ``described_as`` and gives Spark's
        reason on one line, instead of a database error with the query plan.
        """
        try:
            _, table = self.execute(f"describe query {sql}", fetch=True)
        except DbtRuntimeError as error:
            raise DbtRuntimeError(f"{described_as}: {spark_reason(str(error))}") from None
        return {str(row[0]).lower(): str(row[1]).lower() for row in table.rows}

    @available
    def remove_orphaned_table_location(self, relation: BaseRelation) -> bool:
        """Delete files at a managed table's default location that no table owns.

        A process killed while Spark writes a table (``create table … as``,
        ``saveAsTable``) leaves the data files without the catalog entry, and
        Spark then refuses to create that table again: ``LOCATION_ALREADY_EXISTS
        … remove the existing location first``. Files under a managed table's
        default location that no table of the catalog owns are such leftovers;
        they are removed (and logged) before the table is created, so a rerun
        after a kill succeeds. Classic sessions only: a Spark Connect client has
        no access to the server's file system (returns False).
        """
        from py4j.protocol import Py4JError

        session = self.connections.get_thread_connection().handle.session
        jvm_session = getattr(session, "_jsparkSession", None)
        if jvm_session is None or not relation.schema or not relation.identifier:
            return False
        jvm = session._jvm
        try:
            identifier = jvm.org.apache.spark.sql.catalyst.TableIdentifier(
                relation.identifier, jvm.scala.Option.apply(relation.schema)
            )
            catalog = jvm_session.sessionState().catalog()
            if catalog.tableExists(identifier):
                return False
            location = jvm.org.apache.hadoop.fs.Path(catalog.defaultTablePath(identifier))
            files = location.getFileSystem(jvm_session.sessionState().newHadoopConf())
            if not files.exists(location):
                return False
            files.delete(location, True)
        except Py4JError as error:  # no such schema, a catalog without default paths, …
            logger.debug(f"not checked for orphaned files of {relation}: {error}")
            return False
        logger.warning(
            f"removed files at {location.toString()} that no table owns (left by a run "
            f"killed while writing {relation}) before creating it"
        )
        return True

    def _session(self):
        return self.connections.get_thread_connection().handle.session

    def _rows(self, sql: str) -> list:
        return self._session().sql(sql).collect()

    @available
    def acquire_build_lock(
        self, schema: str, version: str, wait_minutes, expires_after_minutes
    ) -> None:
        """Take ``schema``'s build lock for this invocation (:mod:`build_lock`), waiting up
        to ``wait_minutes`` while another invocation holds it."""
        from datetime import datetime, timedelta, timezone

        from dbt_common.invocation import get_invocation_id

        holder = build_lock.this_process(
            get_invocation_id(),
            str(version or ""),
            invoked_command() or "run-operation",
            datetime.now(timezone.utc),
        )
        try:
            build_lock.acquire(
                self._rows,
                schema,
                holder,
                wait=timedelta(minutes=float(wait_minutes)),
                expires_after=timedelta(minutes=float(expires_after_minutes)),
                log=logger.info,
            )
        except RuntimeError as error:
            raise DbtRuntimeError(str(error)) from None
        # What was read of the schema before the lock was taken may be out of date:
        # other processes built in it meanwhile (while this one waited, or between dbt
        # listing the schema's relations and this hook). dbt's cache of the relations
        # is listed again, and a session of an earlier invocation (or a Connect
        # server's, which other clients share) forgets the file listings it holds.
        # Not on an embedded Derby metastore, which no other process can open.
        if not self._metastore_of_this_process_alone():
            relations = self._list_relations_again(schema)
            if (
                schema in _LOCKED_BEFORE_IN_THIS_PROCESS
                or self.config.credentials.method == "connect"
            ):
                tables = [relation.identifier for relation in relations if relation.is_table]
                build_lock.refresh_tables(self._rows, schema, tables)
        _LOCKED_BEFORE_IN_THIS_PROCESS.add(schema)

    def _metastore_of_this_process_alone(self) -> bool:
        """Whether the session's metastore is an embedded Derby database (the local
        targets'), which one process at a time opens. Anything else (a metastore
        service, Glue, a Connect server's, a cluster's hive-site.xml) may be shared."""
        if self.config.credentials.method == "connect":
            return False
        conf = self._session().conf
        uris = conf.get("spark.hadoop.hive.metastore.uris", "") or ""
        url = conf.get("spark.hadoop.javax.jdo.option.ConnectionURL", "") or ""
        return not uris.strip() and url.startswith("jdbc:derby:") and "//" not in url

    def _list_relations_again(self, schema: str) -> list[BaseRelation]:
        """The catalog's relations of ``schema`` now, which replace those dbt cached
        when the invocation began."""
        listed = self.list_relations_without_caching(self.Relation.create(schema=schema))
        for database, cached_schema in [
            key for key in self.cache.schemas if (key[1] or "").lower() == schema.lower()
        ]:
            self.cache.drop_schema(database, cached_schema)
            self.cache.add_schema(database, cached_schema)
            for relation in listed:
                self.cache.add(relation)
        return listed

    @available
    def release_build_lock(self, schema: str, this_invocation_only: bool = True) -> bool:
        """Give back ``schema``'s build lock if this invocation holds it (any holder's
        when not ``this_invocation_only``); whether one was released."""
        from dbt_common.invocation import get_invocation_id

        owner = get_invocation_id() if this_invocation_only else None
        return build_lock.release(self._rows, schema, owner)

    @available
    def table_exists(self, relation: BaseRelation) -> bool:
        """Whether the catalog has this table now (dbt's relation cache is not asked:
        a Python model may have created it during this run)."""
        return bool(self._session().catalog.tableExists(str(relation)))

    @available
    def table_provider(self, relation: BaseRelation) -> str:
        """A table's format as the catalog records it (``iceberg``, ``delta``,
        ``parquet``, ``hive``, …), lower case."""
        provider = publication.described(self._session(), str(relation), "Provider")
        return (provider or "hive").lower()

    @available
    def table_location(self, relation: BaseRelation) -> str:
        """The location of a table, as the catalog records it."""
        return publication.table_location(self._session(), str(relation))

    @available
    def partition_location(self, relation: BaseRelation, partition: str) -> str | None:
        """The location of one partition of a table (``partition``: its spec,
        ``partition (column = 'value')``); None when the table has no such partition."""
        session = self._session()
        if not session.sql(f"show partitions {relation} {partition}").collect():
            return None
        rows = session.sql(f"describe table extended {relation} {partition}").collect()
        return next((row[1] for row in rows if row[0] == "Location"), None)

    def _file_system(self, location: str):
        """(the Hadoop file system of ``location``, Hadoop's Path), or None on Spark
        Connect, whose client cannot reach the server's file system."""
        return publication.hadoop_file_system(self._session(), location)

    @available
    def remove_unpublished_files(
        self,
        relation: BaseRelation,
        value: str,
        published: str,
        replaced: str | None,
        column: str | None = None,
    ) -> list[str]:
        """After publishing ``published`` as a version's partition, remove the version's
        folders that no partition points at and no reader can be scanning: its other
        staged folders (runs killed or refused before they published, and the folder
        an earlier rebuild replaced; not a folder another run still stages into, by its
        owner file: :func:`publication.still_staging`) and, for a table of an earlier release, the
        partition's ``column=value`` folder. ``replaced``, the folder the partition
        pointed at until now, is kept until the version's next publication, so that a
        query already scanning it finishes (as Iceberg and Delta keep a replaced
        version's files for time travel). Only folders inside the table's own location
        are removed. Returns what was removed (logged). Classic sessions only: a Spark
        Connect client cannot reach the server's file system (logs what is left).
        """
        from py4j.protocol import Py4JError

        table_location = self.table_location(relation)
        file_system = self._file_system(table_location)
        if file_system is None:
            if replaced and replaced != published:
                logger.warning(
                    f"on Spark Connect, the replaced files of {relation} at {replaced} "
                    "are not removed (the server's file system is out of reach)"
                )
            return []
        files, path = file_system

        def qualified(location: str) -> str:
            return files.makeQualified(path(location)).toString().rstrip("/")

        inside = qualified(table_location) + "/"
        kept = {qualified(published), *([qualified(replaced)] if replaced else [])}
        candidates = []
        staged = path(publication.version_folder(table_location, value))
        try:
            if files.exists(staged):
                candidates += [status.getPath().toString() for status in files.listStatus(staged)]
            if column:  # a table of an earlier release: the partition's key=value folder
                utils = self._session()._jvm.org.apache.spark.sql.catalyst.catalog
                folder = utils.ExternalCatalogUtils.getPartitionPathString(column, value)
                legacy = qualified(f"{table_location.rstrip('/')}/{folder}")
                if files.exists(path(legacy)):
                    candidates.append(legacy)
        except Py4JError as error:
            logger.debug(f"staged folders of {relation} not listed: {error}")
        unpublished = [
            location
            for location in dict.fromkeys(candidates)
            if location not in kept
            and location.startswith(inside)
            and not location.rsplit("/", 1)[-1].startswith("_")  # owner files: with their folder
        ]
        removed = publication.remove_finished_runs(self._session(), files, path, unpublished)
        try:
            publication.remove_abandoned_owner_files(
                self._session(), files, path, staged.toString()
            )
        except Py4JError as error:
            logger.debug(f"owner files of {relation} not cleaned: {error}")
        if removed:
            logger.debug(f"removed files of {relation} no partition points at: {removed}")
        return removed

    @available
    def unaudited(
        self,
        publisher: str,
        nodes: dict,
        version: str,
        command: str,
        selected: list[str],
        ledger: BaseRelation,
        staged: dict | None = None,
    ) -> list[str]:
        """Why the model ``publisher`` may not publish ``version`` now (empty: it may):
        :func:`audits.unaudited` on the project's DAG (``nodes``: unique id →
        ``resource_type``, ``parents``, ``severity``), this invocation, the labels of
        the audit relations it publishes (``staged``: unique id → relation) and the
        audit ledger, which is read only when this invocation alone does not settle it
        (a whole ``dbt build`` never reads it)."""
        graph = _audit_graph(nodes)
        labels = {
            node_id: audits.StagedLabels(*self._staged_labels(relation))
            for node_id, relation in (staged or {}).items()
        }
        problems = audits.unaudited(publisher, graph, version, command, selected, {}, labels)
        if not problems:
            return []
        entries = self._ledger_entries(ledger, graph)
        return audits.unaudited(publisher, graph, version, command, selected, entries, labels)

    @available
    def publication_changes(
        self,
        publisher: str,
        nodes: dict,
        version: str,
        command: str,
        selected: list[str],
        ledger: BaseRelation,
    ) -> bool:
        """Whether publishing ``publisher`` now may change what readers see of ``version``
        (:func:`audits.changes_published_rows`): the ledger is read only when none of its
        parents was built in this invocation (a whole ``dbt build`` never reads it)."""
        graph = _audit_graph(nodes)
        if audits.built_in_this_invocation(graph[publisher].parents, command, selected):
            return True
        entries = self._ledger_entries(ledger, graph)
        return audits.changes_published_rows(publisher, graph, version, command, selected, entries)

    def _ledger_entries(self, ledger: BaseRelation, nodes) -> dict[str, audits.LedgerEntry]:
        """The latest entry of the audit ledger for each of ``nodes`` (none recorded: absent)."""
        session = self._session()
        if not session.catalog.tableExists(str(ledger)):
            return {}
        listed = ", ".join(sql_literal(node_id) for node_id in nodes)
        rows = session.sql(
            f"select node, embedding_version, status, recorded_at, failures, invocation_id from ("
            f"select *, row_number() over (partition by node order by recorded_at desc) as recency "
            f"from {ledger} where kind in ('model', 'test') and node in ({listed})) "
            f"where recency = 1"
        ).collect()
        return {row[0]: audits.LedgerEntry(*row[1:]) for row in rows}

    @available
    def staged_version(self, relation: BaseRelation) -> str | None:
        """The version whose rows an audit relation of write-audit-publish holds (its
        table property ``embedding_stabilization.version``, set when the rows were
        staged), or None when it has none (not such a relation, or staged by an
        earlier release)."""
        return self._staged_labels(relation)[0]

    def _staged_labels(self, relation) -> tuple[str | None, str | None]:
        """(version, run) an audit relation is labelled with (None where it is not)."""
        session = self._session()
        if not session.catalog.tableExists(str(relation)):
            return None, None
        properties = {
            row[0]: row[1] for row in session.sql(f"show tblproperties {relation}").collect()
        }
        return (
            properties.get(publication.STAGED_VERSION_PROPERTY),
            properties.get(publication.STAGED_RUN_PROPERTY),
        )

    @available
    def publish_branch(self, relation: BaseRelation, staged: BaseRelation, value: str):
        """Iceberg: publish the version's rows the audit view ``staged`` reads, written on
        a branch of ``relation`` by the run that staged them (its label; this invocation
        when unlabelled), by :func:`publication.publish_branch`. An adapter response."""
        run = self._staged_labels(staged)[1]
        if run is None:
            from dbt_common.invocation import get_invocation_id

            run = get_invocation_id()
        branch = publication.staged_branch(value, run)
        message = publication.publish_branch(self._session(), str(relation), branch)
        return AdapterResponse(_message=message)

    @available
    def commit_staged_files(
        self, relation: BaseRelation, staged: BaseRelation, column: str, value: str
    ):
        """Delta: publish the version's rows the audit table ``staged`` reads (files
        staged inside ``relation``'s folder) by committing those files to ``relation``
        (:func:`publication.commit_staged_files`), then make ``staged`` a view of the
        published rows and remove the version's staged folders no table version
        references. An adapter response for dbt; None, having changed nothing, when
        this session cannot commit them so (the caller copies the rows, then calls
        :meth:`after_publishing`)."""
        location = self.table_location(relation)
        committed = publication.commit_staged_files(
            self._session(), location, self.table_location(staged), column, value
        )
        if committed is None:
            logger.debug(f"{relation}: the audited rows are copied instead")
            return None
        self._view_of_published_rows(relation, staged, column, value, drop_table=True)
        self._remove_unreferenced_delta_runs(relation, location, value, committed.runs)
        return AdapterResponse(_message=f"COMMIT version {committed.version} of {relation}")

    def _view_of_published_rows(
        self, relation: BaseRelation, staged: BaseRelation, column: str, value: str, drop_table
    ) -> None:
        """The audit relation ``staged`` becomes a view of the version's published rows."""
        session = self._session()
        columns = [col.name for col in self.get_columns_in_relation(relation)]
        if drop_table:
            session.sql(f"drop table if exists {staged}")  # external: its files stay
        publication.create_partition_view(
            session, str(staged), str(relation), columns, column, value
        )

    @available
    def after_publishing(
        self,
        relation: BaseRelation,
        staged: BaseRelation,
        column: str,
        value: str,
        file_format: str,
    ) -> None:
        """After a version's rows were published into a lakehouse table by a commit
        (Iceberg: ``main`` fast-forwarded to their branch; Delta: the staged files
        committed, or copied, in one transaction): the audit relation ``staged``
        becomes a view of the published rows, and what held staged rows no table
        version needs (the version's branches; staged folders of other runs, or of
        this one if copied) is removed."""
        self._view_of_published_rows(
            relation, staged, column, value, drop_table=file_format == "delta"
        )
        self.remove_version_files(relation, value, file_format)

    @available
    def remove_version_files(
        self, relation: BaseRelation, value: str, table_format: str = "hive"
    ) -> bool:
        """After a version's partition was dropped from a published table: remove the
        folder of that version's staged rows (every run's), which no partition points
        at any more (Iceberg: the branches its rows were staged on; Delta: the runs'
        folders no table version Delta keeps references, the others being time
        travel's until VACUUM removes them). Whether there was one to remove. Classic
        sessions only (as :meth:`remove_unpublished_files`: logs what is left on
        Spark Connect)."""
        session = self._session()
        if table_format == "iceberg":
            return bool(publication.drop_staged_branches(session, str(relation), value))
        location = self.table_location(relation)
        folder = publication.version_folder(location, value, table_format)
        file_system = self._file_system(folder)
        if file_system is None:
            logger.warning(
                f"on Spark Connect, the files of {relation} at {folder} are not "
                "removed (the server's file system is out of reach)"
            )
            return False
        if table_format == "delta":
            return self._remove_unreferenced_delta_runs(relation, location, value)
        files, path = file_system
        return bool(files.exists(path(folder)) and files.delete(path(folder), True))

    def _remove_unreferenced_delta_runs(
        self,
        relation: BaseRelation,
        location: str,
        value: str,
        referenced: frozenset[str] = frozenset(),
    ) -> bool:
        """Remove the version's staged run folders no version of the Delta table at
        ``location`` references (``referenced``: run folder names known to be);
        whether any was. Classic sessions only."""
        from py4j.protocol import Py4JError

        try:
            removed = publication.remove_unreferenced_delta_runs(
                self._session(), location, value, referenced
            )
        except (Py4JError, TypeError) as error:  # a Delta build without these classes
            logger.debug(f"staged files of {relation} left to VACUUM: {error}")
            return False
        if removed:
            logger.debug(f"removed staged files of {relation} no version needs: {removed}")
        return bool(removed)


def _audit_graph(nodes: dict) -> dict[str, audits.Node]:
    """The project's DAG as :mod:`audits` reads it, from the macros' description of each
    node (``resource_type``, ``parents``, ``severity``, ``publishes``)."""
    return {
        node_id: audits.Node(
            node["resource_type"],
            tuple(node["parents"]),
            str(node.get("severity") or "error"),
            bool(node.get("publishes")),
        )
        for node_id, node in nodes.items()
    }


def invoked_command() -> str | None:
    """The dbt command this process runs (``build``, ``parse``, …), if dbt says."""
    try:
        from dbt.flags import get_flags

        return getattr(get_flags(), "WHICH", None)
    except ImportError:  # an adapter made outside dbt-core
        return None


def spark_reason(message: str) -> str:
    """Spark's reason in an error, on one line: no dbt heading, SQLSTATE, position or plan."""
    lines = [line.strip() for line in message.strip().splitlines()]
    headings = ("Runtime Error", "Database Error")
    reason = next((line for line in lines if line and line not in headings), message.strip())
    return reason.split(" SQLSTATE:", 1)[0].strip()
