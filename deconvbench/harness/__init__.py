"""The harness: what is done to one prepared strategy call, knowing nothing of suites, CSV
files or rendering.

- ``inputs``: deterministic inputs for a problem, exactly representable in its dtype;
- ``verify``: one call checked against the float64 reference;
- ``clocks``: what times a call (perf_counter, CUDA events, a fake clock for tests);
- ``measure``: warm-up, calibration and adaptive sampling → a :class:`Measurement`;
- ``stats``: pure statistics of samples (median, its distribution-free CI);
- ``notes``: what a measurement says about itself, as typed notes with one text each;
- ``memory``: the peak memory of one call;
- ``capacity``: the memory available (host, GPU), and sizes as text;
- ``peak``: the machine's dense GEMM rate, the denominator of % of peak;
- ``threads``: torch, BLAS and numba thread pools set together;
- ``process``: the process state a measurement runs in (the allocator's thresholds, OpenBLAS's
  workers stopped before timing).

``deconvbench.run`` strings these together for each (case, strategy, pass).
"""
