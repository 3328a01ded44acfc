"""Compress stage: structured pruning and INT8 quantization of the exported network."""
