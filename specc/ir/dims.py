"""Symbolic dimensions: ints, or polynomials over named symbols (N, T) and floor divisions.

A `Sym` is kept in a canonical form, so two dims are equal exactly when their forms are
equal: `(H + 2 - 3)//1 + 1` simplifies to `H`, and `(H - 1)//2 + 1` from two different
convolutions compares equal. Arithmetic on plain ints stays plain ints (the fast path).
"""
from __future__ import annotations

from typing import Union

# A monomial is a sorted tuple of atoms; an atom is a symbol name or a FloorDiv.
# A polynomial is a sorted tuple of (monomial, coefficient) pairs, zero coefficients dropped.


class FloorDiv:
    __slots__ = ("num", "den", "_key")

    def __init__(self, num: Sym, den: int):
        self.num, self.den = num, den
        self._key = (str(num), den)

    def __eq__(self, other):
        return isinstance(other, FloorDiv) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __lt__(self, other):
        return _atom_key(self) < _atom_key(other)

    def __str__(self):
        simple = len(self.num.terms) == 1 and self.num.terms[0][1] == 1 and len(self.num.terms[0][0]) == 1
        return f"{self.num}//{self.den}" if simple else f"({self.num})//{self.den}"


def _atom_key(atom) -> tuple:
    return (0, atom) if isinstance(atom, str) else (1, atom._key)


def _term_key(term) -> tuple:
    mono, coef = term
    return (not mono, [_atom_key(a) for a in mono], coef)  # constants last: H + 1


class Sym:
    __slots__ = ("terms", "_hash")

    def __init__(self, terms: dict):
        self.terms = tuple(sorted(((m, c) for m, c in terms.items() if c), key=_term_key))
        self._hash = hash(self.terms)

    @staticmethod
    def _sorted(terms: tuple) -> Sym:
        """From terms already in canonical order (scaling keeps the order)."""
        sym = Sym.__new__(Sym)
        sym.terms, sym._hash = terms, hash(terms)
        return sym

    @staticmethod
    def var(name: str) -> Sym:
        return Sym({(name,): 1})

    def _as_dict(self) -> dict:
        return dict(self.terms)

    def __eq__(self, other):
        return isinstance(other, Sym) and self.terms == other.terms

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"Sym({self})"

    def __str__(self):
        parts = []
        for mono, coef in self.terms:
            # `2*(T//2)`, `H*(W//2)` and a leading `-(T//2)`: written without the parentheses they
            # would read as floor divisions of the product (of -T), which are other sizes.
            alone = len(mono) == 1 and (coef == 1 or (coef == -1 and parts))
            body = "*".join(str(a) if isinstance(a, str) or alone else f"({a})" for a in mono)
            if not mono:
                text = str(abs(coef))
            elif abs(coef) == 1:
                text = body
            else:
                text = f"{abs(coef)}*{body}"
            parts.append(("-" if coef < 0 else "+", text))
        if not parts:
            return "0"
        first_sign, first = parts[0]
        out = ("-" if first_sign == "-" else "") + first
        for sign, text in parts[1:]:
            out += f" {sign} {text}"
        return out

    @property
    def symbols(self) -> set[str]:
        found = set()
        for mono, _ in self.terms:
            for atom in mono:
                found |= {atom} if isinstance(atom, str) else atom.num.symbols
        return found


Dim = Union[int, Sym]


def _poly(d: Dim) -> dict:
    return {(): d} if isinstance(d, int) else d._as_dict()


def _make(terms: dict) -> Dim:
    terms = {m: c for m, c in terms.items() if c}
    if not terms:
        return 0
    if list(terms) == [()]:
        return terms[()]
    return Sym(terms)


def add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    out = _poly(a)
    for m, c in _poly(b).items():
        out[m] = out.get(m, 0) + c
    return _make(out)


def neg(a: Dim) -> Dim:
    return -a if isinstance(a, int) else _make({m: -c for m, c in a.terms})


def sub(a: Dim, b: Dim) -> Dim:
    return a - b if isinstance(a, int) and isinstance(b, int) else add(a, neg(b))


MAX_TERMS = 1_000  # of a symbolic size: real shapes have a handful


def mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if isinstance(a, int) or isinstance(b, int):  # scaling: the order of terms is unchanged
        k, sym = (a, b) if isinstance(a, int) else (b, a)
        return 0 if k == 0 else Sym._sorted(tuple((m, c * k) for m, c in sym.terms))
    pa, pb = _poly(a), _poly(b)
    if len(pa) * len(pb) > MAX_TERMS:  # (A + B + ...)**32 expanded would never end
        raise ValueError(f"the product of two sizes of {len(pa)} and {len(pb)} terms has too many terms "
                         f"(at most {MAX_TERMS:,})")
    out: dict = {}
    for ma, ca in pa.items():
        for mb, cb in pb.items():
            mono = tuple(sorted(ma + mb, key=_atom_key))
            out[mono] = out.get(mono, 0) + ca * cb
    return _make(out)


def floordiv(a: Dim, b: Dim) -> Dim:
    """a // b. A symbolic divisor must divide `a` exactly (one term), else ValueError."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if isinstance(b, int):
        if b == 1:
            return a
        terms = a._as_dict()
        const = terms.pop((), 0)
        (mono, coef), = terms.items() if len(terms) == 1 else [((), 0)]
        if coef == 1 and len(mono) == 1 and isinstance(mono[0], FloorDiv) and b > 0:
            # (P//k + c)//b = (P + k*c)//(k*b): two poolings in a row equal one with both strides
            inner = mono[0]
            return floordiv(add(inner.num, inner.den * const), inner.den * b)
        if all(c % b == 0 for c in terms.values()):
            # the symbolic part divides exactly, so only the constant is floored: (H - 2)//2 = H/2 - 1
            return add(_make({m: c // b for m, c in terms.items()}), const // b)
        # canonical form: (P + c)//k = (P + c mod k)//k + c div k, so (H - 2)//2 + 1 is H//2
        q, r = divmod(const, b)
        if r:
            terms[()] = r
        return add(Sym({(FloorDiv(Sym(terms), b),): 1}), q)
    return exact_div(a, b)


def exact_div(a: Dim, b: Dim) -> Dim:
    """a / b when it divides exactly; ValueError otherwise."""
    if isinstance(b, int):
        if b == 0:
            raise ValueError("division by zero")
        terms = _poly(a)
        if all(c % b == 0 for c in terms.values()):
            return _make({m: c // b for m, c in terms.items()})
        raise ValueError(f"{a} is not divisible by {b}")
    if len(b.terms) != 1:
        raise ValueError(f"cannot divide {a} by {b}")
    (bmono, bcoef), = b.terms
    out = {}
    for mono, coef in _poly(a).items():
        rest = list(mono)
        for atom in bmono:
            if atom not in rest:
                raise ValueError(f"{a} is not divisible by {b}")
            rest.remove(atom)
        if coef % bcoef:
            raise ValueError(f"{a} is not divisible by {b}")
        out[tuple(rest)] = coef // bcoef
    return _make(out)


def prod(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = mul(out, d)
    return out


def fmt(d: Dim) -> str:
    return str(d)


def fmt_shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def is_static(d: Dim) -> bool:
    return isinstance(d, int)


def substitute(d: Dim, env: dict[str, int]) -> int:
    """The size of `d` when its symbols take the sizes in `env` (KeyError for a missing one)."""
    if isinstance(d, int):
        return d
    total = 0
    for mono, coef in d.terms:
        value = coef
        for atom in mono:
            value *= env[atom] if isinstance(atom, str) else substitute(atom.num, env) // atom.den
        total += value
    return total
