"""cyclegc._opcodes: the opcode tables of the value-stack roots, read from
the ``opcode`` module alone, must be what ``dis`` says of every opcode."""
import dis
import subprocess
import sys

from cyclegc import _opcodes


def test_all_opnames_match_dis():
    names = _opcodes.all_opnames()
    assert names == list(dis._all_opname[:len(names)])
    assert all(n.startswith("<") for n in dis._all_opname[len(names):])


def test_deopt_matches_dis_on_every_opcode():
    bases = _opcodes.deopt(_opcodes.all_opnames())
    assert [dis._deoptop(op) for op in range(len(bases))] == bases
    # specialized opcodes exist on 3.11-3.13, and map to another opcode
    assert any(b != op for op, b in enumerate(bases))


def test_tables_import_only_opcode():
    code = ("import sys, cyclegc; before = set(sys.modules); from cyclegc import _opcodes; "
            "_opcodes.tables(); print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    new = set(eval(out))
    assert "dis" not in new and "collections" not in new
    assert new <= {"opcode", "_opcode", "_opcode_metadata", "cyclegc._opcodes"}
