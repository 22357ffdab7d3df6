"""Insights: a short plain-language explanation of each retrain outcome and each critical drift check.

facts       what an explanation is built from (app DB rows the work wrote; secrets masked)
templates   the deterministic text, written at once and kept when nothing better arrives
service     recording (note_retrain, note_drift, link_alert): cheap DB writes that never raise
generate    the prompt (facts only) and the OpenAI-compatible chat completions call
narrator    generation in the background (Narrator), or now (generate_now)
records     the read side (InsightRecord, get_insight, insights_for)
"""

from mlops.insights.narrator import Narrator, generate_now, generate_pending, require_insight, wake_narrators
from mlops.insights.records import InsightRecord, Subject, get_insight, insights_for
from mlops.insights.service import link_alert, note_drift, note_retrain

__all__ = [
    "InsightRecord",
    "Narrator",
    "Subject",
    "generate_now",
    "generate_pending",
    "get_insight",
    "insights_for",
    "link_alert",
    "note_drift",
    "note_retrain",
    "require_insight",
    "wake_narrators",
]
