"""`make bench`: Tether's numbers next to kubectl's, measured in the same run on a devcluster of its own.

Run with ``.venv/bin/python -m bench [--quick] [--src PATH]``; see ``docs/benchmarks.md``.
Every benchmark writes ``bench/results/<name>.json`` (machine, commit, parameters, samples with
min/median/max, and the baseline's figures); ``bench.report`` turns those files into the tables
of ``docs/benchmarks.md``.
"""
