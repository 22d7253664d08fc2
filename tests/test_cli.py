"""python -m cyclegc, run as a user would."""
import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "cyclegc", *args],
                          capture_output=True, text=True, timeout=120)


def test_info_json_reports_the_interpreters_state():
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert len(info["thresholds"]) == 3 and info["enabled"] is True


def test_bench_prints_a_ratio_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = run("bench", "--sizes", "3k", "--repeat", "3", "--garbage", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ratio" in proc.stdout
    (row,) = json.loads(out.read_text())["results"]
    assert row["tracked_objects"] > 3000 and row["ratio_median"] > 0
    found = {name: c["collected_median"] for name, c in row["collectors"].items()}
    assert found["cyclegc"] == found["builtin"] > 0  # both free the same garbage


def test_bad_invocation_exits_2_with_usage():
    proc = run("no-such-command")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_bench_bad_sizes_is_a_usage_error():
    proc = run("bench", "--sizes", "10x")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "--sizes" in proc.stderr and "'10x'" in proc.stderr
    assert "Traceback" not in proc.stderr
