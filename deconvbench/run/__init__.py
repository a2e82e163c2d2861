"""The run: cases × strategies × passes → verified, measured rows, written as they finish.

- ``types``: :class:`RunOptions`, :class:`Task`, :class:`RunFacts`, :class:`ProgressSink`;
- ``loop``: the plan of tasks and the loop that runs them (in rounds) and writes rows;
- ``steps``: one task's steps (support → memory → prepare → verify → measure) → an outcome;
- ``outcome``: what a task's round produced, before it is a row;
- ``rows``: a final outcome as its results row;
- ``rounds``: ``--rounds``: budgets, merging rounds, the journal of unwritten rounds;
- ``context``: what one run's tasks share (inputs and the reference per case, clocks);
- ``isolate``: ``--isolate``: tasks in a worker process that may crash or hang;
- ``footprint``: the memory a task needs, estimated before anything is made.
"""
