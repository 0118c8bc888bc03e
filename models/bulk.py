"""Writing thousands of rows in a few statements, for the set-based certificate steps.

On PostgreSQL the rows travel as one array per column, unpacked on the server by `unnest`: a
statement of a few hundred characters carries 10,000 rows. The portable way (SQLAlchemy's
multi-row VALUES, or executemany) sends a statement with one placeholder per value, which the
driver parses in Python page by page and the server runs row by row: for a national cycle's
certificates that was most of the time. Other databases (SQLite, file-local and fast at
executemany) take the portable way.
"""

import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from admin_app.extensions import db


def on_postgresql():
    return db.session.get_bind().dialect.name == "postgresql"


def unnested(columns):
    """A FROM clause of rows given column by column: {name: (type, [value per row])}.

    Enum values go as their stored text (the columns keep them as text with a CHECK).
    """
    arrays = []
    for name, (kind, values) in columns.items():
        if isinstance(kind, sa.Enum):
            kind = sa.String()
            values = [value.value if isinstance(value, enum.Enum) else value for value in values]
        arrays.append(sa.bindparam(f"rows_{name}", values, type_=postgresql.ARRAY(kind)))
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived()


def insert_many(table, rows, returning=()):
    """Insert `rows` (dicts with the same keys) into `table`; the `returning` columns of each.

    The returned rows come in no particular order: return a key (such as the case id) with them.
    """
    if not rows:
        return []
    # on PostgreSQL, a value that every row shares goes once, the others as one array each
    first = rows[0]
    shared = [name for name in first if all(row[name] == first[name] for row in rows)]
    varying = [name for name in first if name not in shared]
    if not varying or not on_postgresql():
        statement = sa.insert(table)
        if not returning:
            db.session.execute(statement, rows)
            return []
        return db.session.execute(statement.returning(*returning), rows).all()

    source = unnested({name: (table.c[name].type, [row[name] for row in rows]) for name in varying})
    selected = [
        *(source.c[name] for name in varying),
        *(sa.bindparam(f"shared_{name}", first[name], type_=table.c[name].type) for name in shared),
    ]
    statement = sa.insert(table).from_select([*varying, *shared], sa.select(*selected))
    if not returning:
        db.session.execute(statement)
        return []
    return db.session.execute(statement.returning(*returning)).all()
