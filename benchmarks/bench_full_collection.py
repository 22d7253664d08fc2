#!/usr/bin/env python3
"""Full (generation 2) collection time: cyclegc vs the built-in gc.

The benchmark lives in the package (cyclegc.bench) so that an installed
cyclegc can run it as `python -m cyclegc bench`; this script is the same
entry point for people browsing benchmarks/.  Run it with an interpreter that
has cyclegc installed, e.g. .venvs/3.12/bin/python after
`python scripts/test_all.py`:

    python benchmarks/bench_full_collection.py [--garbage] [--sizes 10k,100k,1M]
        [--repeat 7] [--seed N] [--json FILE]
"""
import sys

from cyclegc.bench import main

if __name__ == "__main__":
    sys.exit(main())
