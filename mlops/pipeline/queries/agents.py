"""The agent-name check of the read side: `mlops.agents.specs.get_spec`'s answer (same error), without
importing the agents' numpy code, so a listing in a fresh process (`skippy ai runs`) stays fast."""

from __future__ import annotations

from mlops.errors import UnknownAgentError
from mlops.settings import AGENTS


def known_agent(agent: str) -> str:
    if agent not in AGENTS:
        raise UnknownAgentError(agent, AGENTS)
    return agent
