"""Prefect flows: orchestration only. All data and ML logic lives in the flywheel package."""
