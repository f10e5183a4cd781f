"""Copies of JSON values (dicts, lists and scalars), which is all kubesim stores and serves:
about a third of copy.deepcopy's time (no memo, no dispatch on arbitrary types). Plain dicts
and lists are copied; immutable values (str, int, float, bool, None, tuples of them) are
shared; anything else mutable goes to copy.deepcopy."""

import copy

_DICT, _LIST = dict, list
_IMMUTABLE = frozenset((str, int, float, bool, type(None)))


def json_copy(value):
    t = type(value)
    if t is _DICT:
        return {k: (v if type(v) in _IMMUTABLE else json_copy(v)) for k, v in value.items()}
    if t is _LIST:
        return [v if type(v) in _IMMUTABLE else json_copy(v) for v in value]
    if t in _IMMUTABLE:
        return value
    return copy.deepcopy(value)
