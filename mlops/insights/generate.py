"""Asking an OpenAI-compatible chat completions API for the explanation.

The prompt is the facts as JSON (mlops/insights/facts.py) and fixed instructions: no key, URL, store,
path or person's name is in it (facts never hold one; a failed run's error is masked before it is a
fact). The call uses `settings.insight_timeout_seconds` and no client retries: the narrator decides
whether to try again later (mlops/insights/narrator.py), so a dead server costs one timeout, not three."""

from __future__ import annotations

import json
from typing import Any

from mlops.errors import brief
from mlops.insights.facts import masked_brief
from mlops.settings import Settings

MAX_TOKENS = 350
MAX_TEXT = 4000  # characters of a generated explanation kept

SYSTEM = (
    "You explain the results of an MLOps system for two trading models to the people who run it. "
    "market_insight predicts the direction of the next move and trades on it; risk_assessor predicts the "
    "probability of a tail loss and cuts exposure when it rises. Write 3 to 5 plain sentences, no lists, no "
    "headings, no markdown. Use only the facts given; never invent numbers; say what happened, why, and what it "
    "likely means for the model in production. Mention a number only when it helps."
)
ASK = {
    "retrain": "Explain this retrain's outcome: what changed in the metrics (against the previous champion and "
    "buy-and-hold), the promotion gate's reasoning, and which features the model relies on and how that changed.",
    "drift": "Explain this critical drift check: which features moved and how much, what those features measure "
    "and what the shift likely means for the market and the model, and what the model's predictions and "
    "performance did.",
}


class GenerationError(Exception):
    """The API did not give an explanation; the message is masked (no key, no URL secret)."""


def messages(subject: str, facts: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one insight: built from `facts` only."""
    body = json.dumps(facts, sort_keys=True, default=str, ensure_ascii=False)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{ASK[subject]}\n\nFacts (JSON):\n{body}"},
    ]


def ask(settings: Settings, subject: str, facts: dict[str, Any]) -> str:
    """The generated explanation; raises GenerationError (masked) on no key, a timeout, a refusal, an
    unreachable server or an empty answer."""
    if settings.openai_api_key is None:
        raise GenerationError("no OPENAI_API_KEY: the template text stays")
    import openai  # ~1 s to import: only where an explanation is generated, never on the work's path

    try:
        client = openai.OpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url or None,
            timeout=settings.insight_timeout_seconds,
            max_retries=0,
        )
        with client:
            answer = client.chat.completions.create(
                model=settings.insight_model,
                messages=messages(subject, facts),  # type: ignore[arg-type]
                max_completion_tokens=MAX_TOKENS,
            )
    except openai.APITimeoutError:
        raise GenerationError(f"no answer within {settings.insight_timeout_seconds:g} s") from None
    except openai.APIStatusError as exc:
        raise GenerationError(masked_brief(settings, f"HTTP {exc.status_code}: {exc.message}", 500)) from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__
        raise GenerationError(
            masked_brief(settings, f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc), 500)
        ) from None
    except Exception as exc:
        raise GenerationError(masked_brief(settings, f"{type(exc).__name__}: {exc}", 500)) from None
    choices = answer.choices or []
    text = (choices[0].message.content or "").strip() if choices else ""
    if not text:
        raise GenerationError("the model answered with no text")
    return brief(text, MAX_TEXT)
