"""Feature importance over time, bounded: the newest versions' permutation importance (and the champion's, if
it is older), for a versions × features view. `feature_importance(all_versions=True)` reads every version an
agent ever had — a year of daily retrains is 13,000 rows and most of a second — where a chart shows a few
dozen rows."""

from __future__ import annotations

from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import FeatureImportance
from mlops.errors import InvalidRequestError
from mlops.pipeline.deployments import CHAMPION, current_aliases
from mlops.pipeline.queries.agents import known_agent
from mlops.pipeline.queries.importance import ImportanceRecord
from mlops.settings import Settings

COLUMNS = tuple(getattr(FeatureImportance, name) for name in ImportanceRecord.model_fields)


def importance_history(
    settings: Settings, *, agent: str, versions: int = 30
) -> tuple[list[ImportanceRecord], int | None]:
    """The importance of the `versions` newest versions that have some, plus the champion's; newest version
    first, by rank within a version. Also returns the champion's version (None without a champion)."""
    known_agent(agent)
    if not 1 <= versions <= 1000:
        raise InvalidRequestError(f"versions must be within 1..1000, got {versions}")
    mine = FeatureImportance.agent_type == agent
    with session_scope(settings.app_db_url) as session:
        champion = current_aliases(session, agent)[CHAMPION]
        newest = list(
            session.scalars(
                select(FeatureImportance.model_version)
                .where(mine)
                .group_by(FeatureImportance.model_version)
                .order_by(FeatureImportance.model_version.desc())
                .limit(versions)
            )
        )
        wanted = set(newest) | ({champion} if champion is not None else set())
        rows = session.execute(
            select(*COLUMNS)
            .where(mine, FeatureImportance.model_version.in_(wanted))
            .order_by(FeatureImportance.model_version.desc(), FeatureImportance.rank)
        ).all()
    return [ImportanceRecord.model_validate(r) for r in rows], champion
