"""Everything MLflow. The rest of the project reaches MLflow only through this package, and imports it
lazily (importing mlflow takes seconds)."""
