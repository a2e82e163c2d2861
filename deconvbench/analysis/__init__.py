"""Analysis: numbers about finished results, as pure functions (rendering lives in ``render``).

- ``matching``: rows as comparable records, matched across files;
- ``compare``: two files → a verdict per row, and the CI gate;
- ``significance``: the tests and intervals behind the verdicts;
- ``speedups``: every strategy against a baseline strategy, inside one set of rows;
- ``report``: the best strategy per case, the speedup matrix, unstable rows, roofline points;
- ``model_totals``: an imported model's time per strategy, and the best-per-layer mix;
- ``plan``: the strategy to run per (problem, device, pass), by compare's rule;
- ``export``: a run's rows as series for benchmark trackers (``deconvbench export``).
"""
