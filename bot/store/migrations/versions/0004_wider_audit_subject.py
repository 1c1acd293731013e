"""wider audit subject: `sprint:<team>:<sprint name>` can be 129 characters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 06:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column(
            "subject",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            type_=sqlmodel.sql.sqltypes.AutoString(length=200),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.alter_column(
            "subject",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
