"""``flywheel init DATA``: look at a dataset and write what the pipeline needs to run on it.

:mod:`.scan` lists the files and decides the data kind (image folder, text folder, table or
folder of tables), :mod:`.sniff` reads a table's format, delimiter, header, quoting and
encoding, and one profiler per kind (:mod:`.images`, :mod:`.texts`, :mod:`.tables`) builds
the family's own manifest and decides the task, labels and every key the suite needs, each
with what was seen. :mod:`.facts` computes the facts with Great Expectations and checks the
suite against the data before anything is written; :mod:`.params_file` writes the minimal
params file and :mod:`.run` ties it together. Data that is not a dataset is refused with
what was found (:class:`~flywheel.core.errors.DataError`).
"""
