"""``artstyle batch``: many photos with a few paintings, in one process or on a Ray cluster.

* :mod:`~artstyle.batch.jobs`: the pictures of a batch, from a grid or a manifest;
* :mod:`~artstyle.batch.run`: :func:`run_batch`: skips what is made, runs the rest, goes on past failures;
* :mod:`~artstyle.batch.cluster`: the same jobs as Ray tasks (the ``[ray]`` extra).
"""
