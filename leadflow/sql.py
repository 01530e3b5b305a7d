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
import json
import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField
from psycopg.types.json import Jsonb

AUTO_FIELDS = (AutoField, BigAutoField, SmallAutoField)


class InsertStatement:
    """``INSERT INTO <table> (<columns>) SELECT … FROM jsonb_populate_record(…) AS incoming`` for ``model``.

    ``expressions`` maps a column (attname) to SQL computed in the database instead of sent, e.g. a subquery; it
    may refer to the row's other columns as ``incoming.<column>``. The row is the parameter named ``param``.
    """

    def __init__(self, model: type[Model], *, expressions: dict[str, str] | None = None, param: str = "row"):
        meta = model._meta
        quote = connection.ops.quote_name
        self.expressions = dict(expressions or {})
        self.param = param
        self.fields = [
            field
            for field in meta.concrete_fields
            if not field.generated and not isinstance(field, AUTO_FIELDS) and field.attname not in self.expressions
        ]
        columns = [field.column for field in self.fields] + list(self.expressions)
        select = [f"incoming.{quote(field.column)}" for field in self.fields] + list(self.expressions.values())
        self._into = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column) for column in columns)})"
        row = f"jsonb_populate_record(NULL::{quote(meta.db_table)}, %({param})s) AS incoming"
        self._select = f"SELECT {', '.join(select)} FROM {row}"  # noqa: S608 - identifiers from the model

    def params(self, instance: Model) -> dict:
        """``{param: the row}`` for ``instance`` (``auto_now`` fields are stamped on it, as ``save`` does)."""
        row = {field.column: field.get_prep_value(field.pre_save(instance, True)) for field in self.fields}
        return {self.param: Jsonb(row, dumps=_dumps)}

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
