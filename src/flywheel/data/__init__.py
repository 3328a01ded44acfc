"""Datasets: materialising the default one, listing files, decoding and normalising inputs."""
