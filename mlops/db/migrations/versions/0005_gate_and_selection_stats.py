"""gate verdict on model runs, selection statistics on sweeps

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 17:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validation', sa.JSON(), nullable=True))
    with op.batch_alter_table('hyperparameter_sweeps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('selection', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hyperparameter_sweeps', schema=None) as batch_op:
        batch_op.drop_column('selection')
    with op.batch_alter_table('model_runs', schema=None) as batch_op:
        batch_op.drop_column('validation')
