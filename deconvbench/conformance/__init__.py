"""The conformance suite, shipped: every strategy against the float64 reference over random
problems and edge cases, forward and backward, in every dtype it declares.

- ``space``: the problem space (random problems from a seed, the edge cases), one definition
  that ``deconvbench conformance`` and the project's own tests draw from;
- ``engine``: one check, a failure shrunk to a minimal problem, a strategy's whole suite.

``deconvbench conformance GLOB`` (``cli/conformance.py``) runs it for installed strategies.
"""
