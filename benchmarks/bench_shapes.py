#!/usr/bin/env python3
"""Full and young collections on many heap shapes: cyclegc vs the built-in.

The benchmark lives in the package (cyclegc.bench_shapes) so that
`python -m cyclegc bench --suite ... --workloads shapes` can run it from an
installed cyclegc; this script is the same entry point.  Run it with an
interpreter that has cyclegc installed, e.g. .venvs/3.12/bin/python:

    python benchmarks/bench_shapes.py [--sizes 100k,1M,5M] [--shapes a,b]
        [--repeat 5] [--young-heap 1M] [--json FILE] [--markdown FILE]
"""
import sys

from cyclegc.bench_shapes import main

if __name__ == "__main__":
    sys.exit(main())
