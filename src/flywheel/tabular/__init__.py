"""Tabular regression: parsing cells, the fitted preprocessing spec, the manifest the suite
checks, its expectations and the network. :mod:`flywheel.families.tabular` ties them to the
pipeline."""
