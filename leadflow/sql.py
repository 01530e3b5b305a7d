"""Hand-built SQL for the few statements on the intake's hot path.

Django's INSERT compiler rebuilds its statement for every row and copies every expression it meets: on a lead's
60 columns that cost more CPU than PostgreSQL spends storing the row (the ingest profile in bench/RESULTS.md).
``InsertStatement`` builds the statement once per model and sends the row as one JSON parameter that PostgreSQL
turns back into the table's row type (``jsonb_populate_record``), so each column is parsed by its own type's input
function, exactly as a typed literal would be. One parameter instead of sixty also keeps the statement inside
psycopg's cache of parsed queries (it skips queries with more than 50 parameters) and cheap to quote.

Values are prepared as the ORM prepares them (``pre_save``, then ``get_prep_value``), so defaults, ``auto_now``
and foreign keys behave as in ``Model.save``.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
import uuid
import weakref
from collections.abc import Iterable

from django.db import DatabaseError, connection, transaction
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

AUTO_FIELDS = (AutoField, BigAutoField, SmallAutoField)


class InsertStatement:
    """``INSERT INTO <table> (<columns>) SELECT … FROM jsonb_populate_record(…) AS incoming`` for ``model``.

    ``expressions`` maps a column (attname) to SQL computed in the database instead of sent, e.g. a subquery; it
    may refer to the row's other columns as ``incoming.<column>``. The row is the parameter named ``param``; with
    ``many`` it is a list of rows (``jsonb_populate_recordset``), inserted by the one statement.
    """

    def __init__(
        self,
        model: type[Model],
        *,
        expressions: dict[str, str] | None = None,
        param: str = "row",
        many: bool = False,
    ):
        meta = model._meta
        quote = connection.ops.quote_name
        self.expressions = dict(expressions or {})
        self.param = param
        self.many = many
        self.fields = [
            field
            for field in meta.concrete_fields
            if not field.generated and not isinstance(field, AUTO_FIELDS) and field.attname not in self.expressions
        ]
        columns = [field.column for field in self.fields] + list(self.expressions)
        select = [f"incoming.{quote(field.column)}" for field in self.fields] + list(self.expressions.values())
        self._into = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column) for column in columns)})"
        function = "jsonb_populate_recordset" if many else "jsonb_populate_record"
        rows = f"{function}(NULL::{quote(meta.db_table)}, %({param})s) AS incoming"
        self._select = f"SELECT {', '.join(select)} FROM {rows}"  # noqa: S608 - identifiers from the model

    def params(self, instance: Model | list[Model]) -> dict:
        """``{param: the row}`` for ``instance`` (a list of them with ``many``); ``auto_now`` fields are stamped
        on each, as ``save`` does."""
        if self.many:
            return {self.param: Jsonb([self._row(one) for one in instance], dumps=_dumps)}
        return {self.param: Jsonb(self._row(instance), dumps=_dumps)}

    def _row(self, instance: Model) -> dict:
        return {field.column: field.get_prep_value(field.pre_save(instance, True)) for field in self.fields}

    def sql(self, *, where: str = "", suffix: str = "", returning: Iterable[str] = ("id",)) -> str:
        """The statement; with ``where`` it inserts nothing when that condition is false. ``suffix`` goes before
        RETURNING (an ``ON CONFLICT`` clause)."""
        parts = [self._into, self._select]
        if where:
            parts.append(f"WHERE {where}")
        if suffix:
            parts.append(suffix)
        returning = list(returning)
        if returning:
            parts.append(f"RETURNING {', '.join(connection.ops.quote_name(column) for column in returning)}")
        return " ".join(parts)


def _json_value(value):
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()  # to the microsecond (DjangoJSONEncoder would cut it to the millisecond)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(row: dict) -> str:
    return json.dumps(row, default=_json_value, ensure_ascii=False, separators=(",", ":"))


class PreparedStatement:
    """A statement PostgreSQL parses and plans once per connection (``PREPARE``), then runs with ``EXECUTE``.

    LeadFlow binds parameters client-side, so PostgreSQL plans every statement it receives, every time: right for
    searches, whose best plan depends on the term (a generic plan made some a thousand times slower), wasted on the intake's
    fixed statements, whose plan never changes and whose planning cost more than running them. ``EXECUTE`` is
    plain SQL, so it still travels in the same round trip as the statements around it (``BEGIN; …; COMMIT``).

    ``sql`` uses ``%(name)s`` placeholders; ``types`` gives each one's SQL type, in any order. The statement's name
    comes from its text, so a changed statement is prepared afresh. Connections behind a pooler in transaction mode
    do not keep prepared statements; a missing one is prepared again and the call retried once.
    """

    def __init__(self, sql: str, types: dict[str, str]):
        self.order = list(types)
        text = sql
        for position, name in enumerate(self.order, start=1):
            text = text.replace(f"%({name})s", f"${position}")
        if "%(" in text:
            raise ValueError(f"a parameter of this statement has no type: {text[text.index('%(') :][:40]}")
        self.name = "leadflow_" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        self.text = text
        self.prepare_sql = f"PREPARE {self.name} ({', '.join(types.values())}) AS {text}"
        self.execute_sql = f"EXECUTE {self.name} ({', '.join(f'%({name})s' for name in self.order)})"
        _BY_NAME[self.name] = self

    def ensure_prepared(self) -> None:
        """Prepare on this connection unless already done (outside the caller's transaction when there is none)."""
        connection.ensure_connection()
        prepared = _PREPARED.setdefault(connection.connection, set())
        if self.name not in prepared:
            with connection.cursor() as cursor:
                cursor.execute(self.prepare_sql)
            prepared.add(self.name)

    @staticmethod
    def forget_all() -> None:
        """After PostgreSQL reported a prepared statement missing: prepare everything again on next use."""
        if connection.connection is not None:
            _PREPARED.pop(connection.connection, None)


_BY_NAME: dict[str, PreparedStatement] = {}


def executed_statements(sql: str) -> list[str]:
    """The statements a query text ran, each ``EXECUTE`` of a LeadFlow statement shown as the statement it runs
    followed by its arguments (``… -- EXECUTE (1, 2)``): for reading captured queries in tests and logs."""
    shown = []
    for part in re.split(r";\s+(?=(?:EXECUTE|BEGIN|COMMIT|ROLLBACK|SET)\b)", sql):
        match = re.match(r"EXECUTE (leadflow_[0-9a-f]+) (.*)$", part.strip(), re.DOTALL)
        statement = _BY_NAME.get(match.group(1)) if match else None
        shown.append(f"{statement.text} -- EXECUTE {match.group(2)}" if statement else part)
    return shown


# psycopg connection → names prepared on it. Weak: a closed and dropped connection takes its entry with it.
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def execute_prepared(
    statements: list[PreparedStatement], params: dict, *, preamble: tuple[str, ...] = (), atomic: bool = True
) -> tuple | None:
    """Run ``statements`` (after the plain SQL of ``preamble``) in one round trip; return the first row of the
    last one's result.

    Outside any transaction, with ``atomic`` they are one transaction (``BEGIN; …; COMMIT``, rolled back if one
    fails); without it they are still one query, which PostgreSQL runs as one implicit transaction. Inside the
    caller's transaction they run in a savepoint (``atomic``) or directly.
    """
    for attempt in (1, 2):
        for statement in statements:
            statement.ensure_prepared()
        texts = [*preamble, *(statement.execute_sql for statement in statements)]
        try:
            if connection.in_atomic_block:
                if not atomic:
                    return _run(texts, params, result_index=len(texts) - 1)
                with transaction.atomic():
                    return _run(texts, params, result_index=len(texts) - 1)
            if atomic:
                texts = ["BEGIN", *texts, "COMMIT"]
            return _run(texts, params, result_index=len(texts) - 1 - atomic, rollback_on_error=True)
        except DatabaseError as error:
            if attempt == 2 or not prepared_statements_lost(error):
                raise
            PreparedStatement.forget_all()  # the connection lost them (a pooler, DISCARD ALL): prepare again
    raise AssertionError("unreachable")


def fetch_prepared(
    statements: list[PreparedStatement], params: dict, *, preamble: tuple[str, ...] = ()
) -> list[list[tuple]]:
    """Run ``statements`` (after the plain SQL of ``preamble``) in one round trip, as they are inside the caller's
    transaction (no savepoint; outside any, as one implicit transaction), and return every statement's rows.

    Each statement still takes its own snapshot: one that waited for a lock is followed by statements that see what
    the lock's previous holder committed. A failure aborts the caller's transaction; when it was the connection
    losing its prepared statements (a pooler, DISCARD ALL), they are prepared again on next use and
    ``prepared_statements_lost(error)`` tells the caller that running its transaction again will do.
    """
    for statement in statements:
        statement.ensure_prepared()
    with connection.cursor() as cursor:
        try:
            cursor.execute("; ".join([*preamble, *(statement.execute_sql for statement in statements)]), params)
        except DatabaseError as error:
            if prepared_statements_lost(error):
                PreparedStatement.forget_all()
            raise
        for _ in preamble:
            cursor.nextset()
        results = [_rows(cursor)]
        while cursor.nextset():
            results.append(_rows(cursor))
    return results


def _rows(cursor) -> list[tuple]:
    return cursor.fetchall() if cursor.description is not None else []  # an INSERT without RETURNING has none


# For a statement run as its own transaction whose record a synchronous commit soon after makes durable as well.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"

# For a transaction whose prepared statements only look rows up by key: PostgreSQL keeps planning a statement afresh
# (a custom plan) while it estimates the generic plan dearer, which it may do for ever, e.g. before the table has
# statistics; the plan is the same index lookups either way. Until the transaction ends.
GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"


def prepared_statements_lost(error: BaseException) -> bool:
    return isinstance(error, DatabaseError) and isinstance(error.__cause__, errors.InvalidSqlStatementName)


def _run(texts: list[str], params: dict, *, result_index: int, rollback_on_error: bool = False) -> tuple | None:
    with connection.cursor() as cursor:
        try:
            cursor.execute("; ".join(texts), params)
        except Exception:
            if rollback_on_error and connection.connection.info.transaction_status == TransactionStatus.INERROR:
                cursor.execute("ROLLBACK")
            raise
        for _ in range(result_index):
            cursor.nextset()
        return cursor.fetchone()
