"""A program that raises threshold0 as mypy does (gc.set_threshold(200_000)),
then allocates cyclic garbage and keeps a tenth of what it makes."""
import gc
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_500_000
gc.set_threshold(200_000, 10, 10)
keep = []
for i in range(N):
    a = [i]; b = {"a": a}; a.append(b)
    if i % 10 == 0:
        keep.append((a, [i]))
print(len(keep), sum(k[1][0] for k in keep[::1000]))
