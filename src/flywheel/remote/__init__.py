"""The team's shared object store (``remote.url``): one small S3 client with conditional
writes and one-line errors, and what ``flywheel remote status`` reports."""
