"""Opcode tables for the value-stack roots of marking (_core/stackroots.c),
read from the running interpreter's own ``opcode`` module, so a patch level
that renumbers or adds opcodes is followed without a table compiled in.
Only ``opcode`` is imported (it imports ``_opcode``, and on 3.13
``_opcode_metadata``), not ``dis``, which pulls ``collections`` and more
into the program; ``all_opnames()`` and ``deopt()`` compute what ``dis``'s
private ``_all_opname`` and ``_deoptop`` give (tests/test_opcodes.py checks
they agree on every opcode).

``tables()`` returns four 256-byte ``bytes``, indexed by opcode as it sits
in a code object's adaptive bytecode (specialized, instrumented or not):

* ``deopt``: the base opcode (what ``dis._deoptop`` gives); what the stack analysis
  decodes;
* ``caches``: the inline cache entries after the base opcode;
* ``flags``: FWD (relative forward jump), BACK (relative backward jump),
  NOFALL (never falls through), BAIL (an opcode the analysis does not know:
  instrumented, ENTER_EXECUTOR, anything ``dis`` cannot name; a frame at or
  in code holding one gets no value-stack roots), EXTARG (EXTENDED_ARG),
  GENSTART (RETURN_GENERATOR: the frame resumes with the sent value pushed,
  which 3.11 and 3.12's stack effect of 0 leaves out), RERAISE (RERAISE:
  with a non-zero oparg it sets the frame's last instruction back to one
  pushed by an earlier unwinding, then unwinds by its own handler);
* ``pushed``: an upper bound on the values the opcode pushes (its inputs it
  may consume are then pushed - stack effect).  255 means "oparg" (UNPACK_SEQUENCE),
  254 means UNPACK_EX's count.  A bound too high only loses roots.
"""
import opcode

FWD, BACK, NOFALL, BAIL, EXTARG, GENSTART, RERAISE = 1, 2, 4, 8, 16, 32, 64

# Opcodes that push at most one value (the default bound is 3), or none.
_PUSH_ONE = {
    "BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP",
    "BUILD_STRING", "BUILD_SLICE", "CALL", "CALL_FUNCTION_EX", "CALL_KW",
    "BINARY_OP", "BINARY_SUBSCR", "BINARY_SLICE", "COMPARE_OP", "CONTAINS_OP",
    "IS_OP", "LOAD_CONST", "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR",
    "LOAD_NAME", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_CLASSDEREF",
    "LOAD_FROM_DICT_OR_DEREF", "LOAD_FROM_DICT_OR_GLOBALS", "MAKE_FUNCTION",
    "FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "GET_ITER", "GET_AITER",
    "GET_YIELD_FROM_ITER", "UNARY_NEGATIVE", "UNARY_NOT", "UNARY_INVERT",
    "UNARY_POSITIVE", "TO_BOOL", "IMPORT_NAME", "YIELD_VALUE", "PUSH_NULL",
    "LOAD_BUILD_CLASS", "LOAD_ASSERTION_ERROR", "LOAD_LOCALS", "CALL_INTRINSIC_1",
    "CALL_INTRINSIC_2", "LIST_TO_TUPLE", "GET_AWAITABLE", "GET_ANEXT",
}
_PUSH_NONE = {
    "NOP", "RESUME", "CACHE", "EXTENDED_ARG", "POP_TOP", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "RETURN_VALUE", "RETURN_CONST",
    "STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF", "STORE_ATTR",
    "STORE_SUBSCR", "STORE_SLICE", "DELETE_FAST", "DELETE_NAME", "DELETE_GLOBAL",
    "DELETE_DEREF", "DELETE_ATTR", "DELETE_SUBSCR", "LIST_APPEND", "SET_ADD",
    "MAP_ADD", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE", "DICT_MERGE",
    "POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
    "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_FORWARD_IF_NONE",
    "POP_JUMP_FORWARD_IF_NOT_NONE", "POP_JUMP_BACKWARD_IF_FALSE",
    "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE", "RAISE_VARARGS", "RERAISE", "KW_NAMES",
    "POP_EXCEPT", "COPY_FREE_VARS", "MAKE_CELL", "SETUP_ANNOTATIONS",
    "IMPORT_STAR", "PRINT_EXPR", "END_FOR", "POP_ITER",
}
_NOFALL = {
    "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
}


def _cache_entries(name, base):
    entries = opcode._inline_cache_entries
    if isinstance(entries, dict):           # 3.13: by name
        return entries.get(name, 0)
    return entries[base]                    # 3.11, 3.12: by opcode


def all_opnames():
    """Every opcode's name, specialized ones included (``dis._all_opname``)."""
    names = list(opcode.opname)
    spec = getattr(opcode, "_specialized_opmap", None)
    if spec is not None:                    # 3.13: numbered by the table
        for name, op in spec.items():
            names[op] = name
    else:                                   # 3.11, 3.12: the free slots, in order
        free = [i for i, n in enumerate(names) if n.startswith("<")]
        for i, name in zip(free, opcode._specialized_instructions):
            names[i] = name
    return names


def deopt(names):
    """Each opcode's base opcode (``dis._deoptop`` of every opcode)."""
    index = {n: i for i, n in enumerate(names)}
    family = {s: base for base, fam in opcode._specializations.items() for s in fam}
    return [index[family[n]] if n in family else op for op, n in enumerate(names)]


def tables():
    deopt_, caches, flags, pushed = (bytearray(256) for _ in range(4))
    names = all_opnames()
    bases = deopt(names)
    for op in range(256):
        name = names[op] if op < len(names) else None
        base = bases[op] if op < len(bases) else op
        bname = opcode.opname[base] if base < len(opcode.opname) else None
        deopt_[op] = base if base < 256 else 0
        if (name is None or bname is None or bname.startswith("<")
                or bname.startswith("INSTRUMENTED") or bname == "ENTER_EXECUTOR"
                or base >= getattr(opcode, "MIN_INSTRUMENTED_OPCODE", 256)):
            flags[op] = BAIL
            continue
        caches[op] = _cache_entries(bname, base)
        f = 0
        if base in opcode.hasjrel:
            f |= BACK if "BACKWARD" in bname else FWD
        elif base in opcode.hasjabs:
            f |= BAIL                       # none on 3.11-3.13
        if bname in _NOFALL:
            f |= NOFALL
        if base == opcode.EXTENDED_ARG:
            f |= EXTARG
        if bname == "RETURN_GENERATOR":
            f |= GENSTART
        if bname == "RERAISE":
            f |= RERAISE
        flags[op] = f
        if bname == "UNPACK_SEQUENCE":
            pushed[op] = 255
        elif bname == "UNPACK_EX":
            pushed[op] = 254
        elif bname == "PRECALL":
            # 3.11: a specialized PRECALL makes the call itself and leaves
            # the result where NULL/self was; the compiler counts only the
            # arguments as its inputs, so its bound counts callable and self.
            pushed[op] = 2
        elif bname in _PUSH_NONE:
            pushed[op] = 0
        elif bname in _PUSH_ONE:
            pushed[op] = 1
        else:
            pushed[op] = 3
    return bytes(deopt_), bytes(caches), bytes(flags), bytes(pushed)
