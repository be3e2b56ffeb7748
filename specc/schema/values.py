"""Values a Python caller passes (numpy's scalars, tuples, ranges) as the plain values that the
strict schema takes. The strict schema refuses `true` for a number in a spec; from Python, an
`np.int64(3)` or a tuple of batch sizes is what a caller means, so it is converted first."""
from __future__ import annotations

import numbers

# A value the loader has reported as unusable (a YAML statement that does not parse, a number out of
# range), left in its place so the rest of its section is still checked; the schema's complaint about
# it would say the same again, so schema errors on it are dropped.
REFUSED = type("Refused", (), {"__repr__": lambda self: "<refused>"})()


def plain(value, *, lists: bool = False):
    """numpy's scalars as bool/int/float, through lists, tuples and dicts; with `lists`, tuples and
    ranges become lists (the schema's list settings)."""
    if value is None or type(value) in (bool, int, float, str):  # not subclasses: np.float64 is a float
        return value
    if type(value).__name__ in ("bool_", "bool"):  # numpy's bool (named bool_ before numpy 2) is no numbers.Integral
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v, lists=lists) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        items = [plain(v, lists=lists) for v in value]
        return items if lists or not isinstance(value, tuple) else tuple(items)
    return value
