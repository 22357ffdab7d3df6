"""one lock per agent: locks held by queued runs (pid and hostname nullable), no jobs.active_key

A retrain queued as a job takes its agent's lock when it is submitted, so the jobs table needs no
lock of its own; the worker that starts the run gives the lock its process.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_locks') as batch:
        batch.alter_column('pid', existing_type=sa.Integer(), nullable=True)
        batch.alter_column('hostname', existing_type=sa.String(length=255), nullable=True)
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('active_key')


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('active_key', sa.String(length=64), nullable=True))
        batch.create_unique_constraint('uq_jobs_active_key', ['active_key'])
    op.execute("DELETE FROM agent_locks WHERE pid IS NULL OR hostname IS NULL")
    with op.batch_alter_table('agent_locks') as batch:
        batch.alter_column('pid', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('hostname', existing_type=sa.String(length=255), nullable=False)
