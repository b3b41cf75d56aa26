"""The mutants of a module: the operators (mutmut's and cosmic-ray's, with :mod:`ast` only) and where they
apply; a mutant is a byte span of the source and its replacement."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

PRAGMA = "# pragma: no mutate"
REPO = Path(__file__).resolve().parents[2]
COMPARE_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq}
BINOP_FLIP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.And: "and", ast.Or: "or"}
REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Assert, ast.Delete, ast.Break,
             ast.Continue)
EXIT_NOT_THE_COPY = 77  # the guard plugin's exit code: the package was not imported from the copy


# --------------------------------------------------------------------------- mutants
@dataclass
class Mutant:
    line: int
    col: int
    kind: str
    description: str
    start: int                # byte offsets of the replaced span in the source
    end: int
    replacement: bytes
    lines: tuple[int, int]    # the lines whose execution means the mutant ran (its statement)
    import_time: bool         # runs when the module is imported (module/class level, defaults, decorators)
    id: int = 0
    status: str = ""
    seconds: float = 0.0
    tests_run: int = 0

    def apply(self, source: bytes) -> bytes:
        return source[:self.start] + self.replacement + source[self.end:]


def _blank_comments(gap: bytes) -> bytes:
    return re.sub(rb"#[^\n]*", lambda m: b" " * len(m.group()), gap)


class _Finder(ast.NodeVisitor):
    """Walks a module, noting for every node whether it runs at import time and its enclosing statement."""

    def __init__(self, source: bytes):
        self.source = source
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.lines = source.decode("utf-8").splitlines()
        self.mutants: list[Mutant] = []
        self.in_function = False
        self.stmt: ast.stmt | None = None
        self.docstrings: set[int] = set()

    # -- positions
    def offset(self, lineno: int, col: int) -> int:
        return self.starts[lineno - 1] + col

    def span(self, node) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def operator_at(self, left, right, text: str) -> int | None:
        """Byte offset of the operator ``text`` between two operands (parentheses, spaces and comments skipped)."""
        a, b = self.offset(left.end_lineno, left.end_col_offset), self.offset(right.lineno, right.col_offset)
        gap = _blank_comments(self.source[a:b])
        i = 0
        while i < len(gap) and gap[i:i + 1] in (b" ", b"\t", b"\n", b"\r", b"(", b")", b"\\"):
            i += 1
        tok = text.encode()
        if gap[i:i + len(tok)] != tok or gap[i + len(tok):i + len(tok) + 1] in (b"=", b"<", b">", b"*", b"/"):
            return None
        return a + i

    # -- bookkeeping
    def add(self, node, kind: str, description: str, start: int, end: int, replacement: str) -> None:
        first, last = node.lineno, node.end_lineno
        if any(PRAGMA in self.lines[i - 1] for i in range(first, last + 1)):
            return
        stmt = self.stmt or node
        simple = not hasattr(stmt, "body")
        lines = (min(stmt.lineno, first), max(last, stmt.end_lineno if simple else last))
        self.mutants.append(Mutant(first, node.col_offset, kind, description, start, end, replacement.encode(),
                                   lines, import_time=not self.in_function))

    def visit_body_owner(self, node) -> None:
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            self.docstrings.add(id(body[0]))

    def visit_Module(self, node):
        self.visit_body_owner(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.visit_body_owner(node)
        self._stmt(node, lambda: self.generic_visit_except(node, ("body",)), body=node.body, function=False)

    def visit_FunctionDef(self, node):
        self.visit_body_owner(node)
        # decorators and defaults run where the def is; annotations never (``from __future__ import annotations``)
        self._stmt(node, lambda: [self.visit(d) for d in node.decorator_list] + [self.visit_arguments(node.args)],
                   body=node.body, function=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arguments(self, node):
        for d in node.defaults + [d for d in node.kw_defaults if d is not None]:
            self.visit(d)

    def visit_Lambda(self, node):
        self.visit_arguments(node.args)
        outer, self.in_function = self.in_function, True
        self.visit(node.body)
        self.in_function = outer

    def generic_visit_except(self, node, skip):
        for name, value in ast.iter_fields(node):
            if name in skip:
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)

    def _stmt(self, node, header, *, body, function: bool):
        outer_stmt, outer_fn = self.stmt, self.in_function
        self.stmt = node
        header()
        self.in_function = outer_fn or function
        for child in body:
            self.visit(child)
        self.stmt, self.in_function = outer_stmt, outer_fn

    def visit(self, node):
        if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef)):
            outer = self.stmt
            self.stmt = node
            self.statement(node)
            super().visit(node)
            self.stmt = outer
            return None
        return super().visit(node)

    # -- skipped subtrees
    def visit_JoinedStr(self, node):  # f-string positions are unreliable before Python 3.12
        return None

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    # -- operators
    def statement(self, node) -> None:
        if not self.in_function or id(node) in self.docstrings or not isinstance(node, REMOVABLE):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # `...`, a bare string: no effect
            return
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return
        start, end = self.span(node)
        text = self.lines[node.lineno - 1].strip()
        self.add(node, "remove", f"remove `{text[:70]}`", start, end, "pass")

    def visit_Return(self, node):
        if self.in_function and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            start, end = self.span(node.value)
            self.add(node.value, "return", "`return x` -> `return None`", start, end, "None")
        self.generic_visit(node)

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            new = COMPARE_FLIP.get(type(op))
            if new is None:
                continue
            left = node.left if i == 0 else node.comparators[i - 1]
            at = self.operator_at(left, node.comparators[i], OP_TEXT[type(op)])
            if at is not None:
                old_t, new_t = OP_TEXT[type(op)], OP_TEXT[new]
                self.add(node, "compare", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_BinOp(self, node):
        new = BINOP_FLIP.get(type(node.op))
        stringish = any(isinstance(v, (ast.JoinedStr, ast.Tuple, ast.List)) or (
            isinstance(v, ast.Constant) and isinstance(v.value, (str, bytes))) for v in (node.left, node.right))
        if new is not None and not stringish:
            old_t, new_t = OP_TEXT[type(node.op)], OP_TEXT[new]
            at = self.operator_at(node.left, node.right, old_t)
            if at is not None:
                self.add(node, "arith", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        new = BINOP_FLIP.get(type(node.op))
        if new is not None:
            old_t, new_t = OP_TEXT[type(node.op)] + "=", OP_TEXT[new] + "="
            at = self.operator_at(node.target, node.value, old_t)
            if at is not None:
                self.add(node, "arith", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        old_t = OP_TEXT[type(node.op)]
        new_t = "or" if old_t == "and" else "and"
        ats = [self.operator_at(a, b, old_t) for a, b in zip(node.values, node.values[1:])]
        if ats and None not in ats:
            # one mutant flips every operator of the chain: a composite replacement of the whole node
            start, end = self.span(node)
            text = bytearray(self.source[start:end])
            for at in reversed(ats):
                text[at - start:at - start + len(old_t)] = new_t.encode()
            self.add(node, "boolean", f"`{old_t}` -> `{new_t}`", start, end, text.decode())
        self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        start, end = self.span(node)
        if isinstance(value, bool):
            self.add(node, "bool", f"{value} -> {not value}", start, end, str(not value))
        elif isinstance(value, (int, float)):
            news = [value + 1] + ([0 if isinstance(value, int) else 0.0, -value] if value != 0 else [])
            for new in news:
                self.add(node, "number", f"{value!r} -> {new!r}", start, end, f"({new!r})" if new < 0 else repr(new))


def find_mutants(source: bytes, path: str = "<module>") -> tuple[list[Mutant], int]:
    """Every mutant of ``source``, in source order, and how many were dropped for not compiling."""
    finder = _Finder(source)
    finder.visit(ast.parse(source, path))
    seen, out, invalid = {source}, [], 0
    for m in sorted(finder.mutants, key=lambda m: (m.start, m.kind, m.description)):
        mutated = m.apply(source)
        if mutated in seen:
            continue
        seen.add(mutated)
        try:
            compile(mutated, path, "exec", dont_inherit=True)
        except SyntaxError:
            invalid += 1
            continue
        out.append(m)
    for i, m in enumerate(out, 1):
        m.id = i
    return out, invalid
