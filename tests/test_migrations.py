"""The migrations build exactly the schema the models declare, on both databases."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from admin_app import create_app
from admin_app.extensions import db

from .conftest import PG_URL, _postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.db'}"}
        return
    schema, drop = _postgres_schema()
    yield {
        "SQLALCHEMY_DATABASE_URI": PG_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
    }
    drop()


def test_migrations_match_the_models(empty_database, tmp_path):
    app = create_app({"TESTING": True, "UPLOAD_FOLDER": str(tmp_path), **empty_database})

    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            differences = compare_metadata(context, db.metadata)
            tables = sa.inspect(connection).get_table_names()
        db.engine.dispose()

    assert "case" in tables and "alembic_version" in tables
    assert differences == []
