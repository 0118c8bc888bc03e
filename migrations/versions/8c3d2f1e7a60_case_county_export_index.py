"""case: index on cycle, county and id

A county's 案件總表 reads the cycle's cases of that county in id order, a thousand at a time.
Without this index each chunk gathered every remaining case of the county, joined their people
and schools, sorted them and kept a thousand: the national workbook spent a third of its time
there at 100,000 cases.

Revision ID: 8c3d2f1e7a60
Revises: 5b7e1c2a9d40
Create Date: 2026-12-04 19:40:00

"""

from alembic import op

revision = "8c3d2f1e7a60"
down_revision = "5b7e1c2a9d40"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_county_export", ["cycle_id", "county_id", "id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_county_export")
