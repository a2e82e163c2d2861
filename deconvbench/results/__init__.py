"""Results: rows from the run to the CSV file and back.

- ``schema``: the one column list, the statuses, a row's identity;
- ``row``: :class:`ResultRow`, a row as a typed value (and as column → value);
- ``fields``: how each value is written as text and read back;
- ``writer``: the incremental, crash-safe CSV writer;
- ``reader``: the validating reader (every problem one line naming it);
- ``sidecar``: the run's facts as JSON beside the CSV, and atomic writes;
- ``journal``: the append-only journal of rounds not yet written as rows;
- ``merge``: shards and partial runs joined into one file;
- ``plan_file``: the plan file (``deconvbench plan``'s output, ``deconvbench.nn``'s input).
"""
