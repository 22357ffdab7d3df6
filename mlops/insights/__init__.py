"""Insights: a short plain-language explanation of each retrain outcome and each critical drift check."""

from mlops.insights.records import InsightRecord, Subject, get_insight, insights_for

__all__ = ["InsightRecord", "Subject", "get_insight", "insights_for"]
