"""Flywheel: validate, version, train, compress, gate and deploy a model on every data change."""

__version__ = "0.1.0"
