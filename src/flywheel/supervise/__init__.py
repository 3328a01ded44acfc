"""Long-running operation: a Prefect server, the served ``retrain`` deployment and the data
watcher, supervised by ``flywheel up``. Nothing here runs on import."""
