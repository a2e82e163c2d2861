"""Cases: what a run measures, from suite files and ``--case`` strings.

- ``case``: :class:`Case`, a named problem with the passes to measure;
- ``values``: the keys of a case, their defaults and checks (shared by both front ends);
- ``suite_file``: TOML suite files, their sweeps, and the shipped suites;
- ``case_spec``: ``--case`` strings;
- ``gather``: every case a command names, checked for clashing identities.
"""
