"""cyclegc's C core (the `_cyclegc` extension) lives in this package.

Sources: collector.c (the phases), introspect.c (object walks, freeze),
module.c (entry points), compat.h (every CPython version difference),
gclist.h (the interpreter's GC lists).
"""
