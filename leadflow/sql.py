"""Hand-built SQL for the few statements on the intake's hot path.

Django's INSERT compiler rebuilds its statement for every row and copies every expression it meets: on a lead's
60 columns that cost more CPU than PostgreSQL spends storing the row (the ingest profile in bench/RESULTS.md).
``InsertStatement`` builds the column list once per model and prepares each value exactly as the ORM does
(``pre_save``, then ``get_db_prep_save``), so defaults, ``auto_now`` and JSON, array and inet adaptation are the
ORM's own. Every value is bound and cast to its column's type, so the statement works as ``VALUES`` or as the
``SELECT`` of a conditional ``INSERT … SELECT … WHERE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import connection
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField

AUTO_FIELDS = (AutoField, BigAutoField, SmallAutoField)


class InsertStatement:
    """``INSERT INTO <table> (<columns>) …`` for ``model``.

    ``expressions`` maps a column (attname) to SQL written by the caller instead of a bound value, e.g. a subquery
    resolved inside the INSERT. Values are named ``%(<prefix><attname>)s`` so the statement composes with others.
    """

    def __init__(self, model: type[Model], *, expressions: dict[str, str] | None = None, prefix: str = ""):
        meta = model._meta
        self.model = model
        self.table = connection.ops.quote_name(meta.db_table)
        self.expressions = dict(expressions or {})
        self.prefix = prefix
        self.fields = [
            field
            for field in meta.concrete_fields
            if not field.generated
            and not isinstance(field, AUTO_FIELDS)
            and field.attname not in self.expressions
        ]
        values = [f"CAST(%({prefix}{field.attname})s AS {_type_without_modifiers(field)})" for field in self.fields]
        columns = [field.column for field in self.fields] + list(self.expressions)
        self.columns_sql = ", ".join(connection.ops.quote_name(column) for column in columns)
        self.values_sql = ", ".join([*values, *self.expressions.values()])

    def params(self, instance: Model) -> dict:
        """The bound values of ``instance``'s row (``auto_now`` fields are stamped on the instance, as ``save`` does)."""
        return {
            f"{self.prefix}{field.attname}": field.get_db_prep_save(field.pre_save(instance, True), connection)
            for field in self.fields
        }

    def sql(self, *, returning: Iterable[str] = ("id",)) -> str:
        # S608: every identifier comes from the model and every value is bound.
        return f"INSERT INTO {self.table} ({self.columns_sql}) VALUES ({self.values_sql}){_returning(returning)}"  # noqa: S608

    def select_sql(self, *, where: str = "", returning: Iterable[str] = ("id",)) -> str:
        """``INSERT … SELECT <values> [WHERE <where>]``: inserts nothing when ``where`` is false."""
        condition = f" WHERE {where}" if where else ""
        return (
            f"INSERT INTO {self.table} ({self.columns_sql}) SELECT {self.values_sql}{condition}{_returning(returning)}"
        )


def _type_without_modifiers(field) -> str:
    """``varchar(255)`` → ``varchar``: an explicit cast to ``varchar(n)`` truncates silently, where assigning the
    value to the column raises on a value too long, as the ORM's INSERT does."""
    return re.sub(r"\([^)]*\)", "", field.db_type(connection))


def _returning(columns: Iterable[str]) -> str:
    columns = list(columns)
    return f" RETURNING {', '.join(connection.ops.quote_name(c) for c in columns)}" if columns else ""
