"""case: index on cycle, state and round

The back office's work-queue counts and the certificate steps read one cycle's cases by state;
with a national archive (100,000 cases over many cycles) this index answers them from the
index alone instead of visiting every case of the cycle.

Revision ID: 5b7e1c2a9d40
Revises: 2dec8b4a1759
Create Date: 2026-12-04 17:20:00

"""

from alembic import op

revision = "5b7e1c2a9d40"
down_revision = "2dec8b4a1759"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index("ix_case_cycle_state", ["cycle_id", "state", "round"], unique=False)


def downgrade():
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_cycle_state")
