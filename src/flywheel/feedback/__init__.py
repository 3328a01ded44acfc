"""Reviewing production feedback into the dataset: the inbox, the data files a record
becomes, and acceptance by the dataset's own suite."""
