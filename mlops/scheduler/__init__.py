"""The scheduler (DESIGN §9): scheduled retraining, drift checks, validation and the champion watch."""
