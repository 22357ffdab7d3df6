"""Market data: import and validation, the synthetic market, features, labels and splits."""
