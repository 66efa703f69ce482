"""caiclient's benchmark suite: ``python -m benchmarks`` (or ``make bench``).

Every figure is measured in worker subprocesses against an emulator (or a small stamping
server) running in yet another process, and compared in the same run with a bare-loop floor
(:mod:`benchmarks.floor`) that speaks the same frames with curl_cffi and stdlib ``json``.
See docs/benchmarks.md for the method and the latest figures.
"""
