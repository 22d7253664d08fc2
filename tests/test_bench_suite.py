"""The side-by-side benchmark suite (python -m cyclegc bench --suite), run in a
subprocess with tiny sizes: every workload is there with positive figures, and
where there is garbage both collectors find the same amount."""
import json
import subprocess
import sys

import cyclegc

TIMED = {"full_live", "full_garbage", "young_gen0", "young_gen1", "gc_collect", "gc_traversal"}
MEMORY = {"memory_live", "memory_garbage"}
WITH_GARBAGE = {"full_garbage", "young_gen0", "young_gen1", "gc_collect"}


def test_quick_suite_with_tiny_sizes(tmp_path):
    out = tmp_path / "suite.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cyclegc", "bench", "--suite", "quick",
         "--sizes", "2k,4k", "--repeat", "2", "--young-heap", "5k", "--young-new", "200",
         "--memory-size", "5k", "--memory-runs", "1", "--auto-n", "20k", "--shape-sizes", "3k",
         "--json", str(out)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ratio" in proc.stdout and "gc_traversal" in proc.stdout
    doc = json.loads(out.read_text())
    rows = doc["results"]
    expected = TIMED | MEMORY | {"shapes"}
    if hasattr(cyclegc, "install") and "auto" not in doc["skipped"]:
        expected.add("auto")
    assert {r["workload"] for r in rows} == expected
    assert sorted(r["size"] for r in rows if r["workload"] == "full_live") == [2000, 4000]
    assert sorted(r["size"] for r in rows if r["workload"] == "full_garbage") == [2000, 4000]
    assert len([r for r in rows if r["workload"] == "shapes"]) >= 8

    for row in rows:
        assert not row.get("error"), row
        assert row["tracked_objects"] > 0, row["key"]
        for name in ("cyclegc", "builtin"):
            c = row["collectors"][name]
            if row["kind"] == "memory":
                assert c["peak_rss_bytes"] > 0
                assert c["collection_extra_bytes"] is None or c["collection_extra_bytes"] >= -(1 << 20)
            else:
                assert c["median_s"] > 0 and 0 < c["min_s"] <= c["median_s"] <= c["max_s"]
        if row["kind"] == "memory":
            assert isinstance(row["peak_diff_bytes_per_object"], float)
            continue
        assert row["ratio_median"] > 0 and row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
        if row["workload"] in WITH_GARBAGE:
            found = {n: row["collectors"][n]["collected_median"] for n in ("cyclegc", "builtin")}
            assert found["cyclegc"] == found["builtin"] > 0, (row["key"], found)
            assert row["found_equal"], row["key"]
        elif row["kind"] == "time":
            assert row["collectors"]["cyclegc"]["collected_median"] == 0, row["key"]


def test_bench_shapes_ablates_the_splits_walkers():
    # --ablate split: the third collector runs the single walk after
    # marking; both cyclegc collectors free what the built-in frees.
    from cyclegc import bench_shapes
    try:
        rows = None
        bench_shapes.ABLATE = "split"
        rows = bench_shapes.run([2_000], ["small_cycles"], 1, ablation={2_000})
    finally:
        bench_shapes.ABLATE = "prefetch"
    full = [r for r in rows if r["kind"] == "full"]
    assert full and set(full[0]["collectors"]) == {"cyclegc", "builtin", "cyclegc_noprefetch"}
    found = {n: c["found"] for n, c in full[0]["collectors"].items()}
    assert found["cyclegc"] == found["cyclegc_noprefetch"] == found["builtin"]
