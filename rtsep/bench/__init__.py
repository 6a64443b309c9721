"""Benchmarks as a library: what ``rtsep bench`` and ``benchmarks/*.py`` run.

- :mod:`rtsep.bench.latency`: latency and compute over host blocks, rates and backends.
- :mod:`rtsep.bench.machine`: the machine, software and commit a result came from; the
  dated default results folder; a free TCP port.

Results go wherever the caller says (``--out``); the committed ones in ``benchmarks/results``
are only rewritten when that folder is given explicitly.
"""
