"""Tools for people, not for Spark's executors: the HTML report (``report``), the
evaluation's measures and ablations (``evaluation``) and synthetic retrains for tests
and benchmarks (``synthetic``). ``python_udfs`` is what executors import (``make dist``
ships it); nothing in it imports this package.
"""
