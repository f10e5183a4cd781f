"""A small interpreter for the CEL subset used in CRD x-kubernetes-validations rules.

Supported: literals (int, double, string, bool, null, lists, maps), self / oldSelf and
variables bound by macros, field selection, indexing, the operators ! - * / % + < <= > >= ==
!= in && || ?:, the macros has(), all(), exists(), exists_one(), filter(), map(), and the
functions size(), startsWith(), endsWith(), contains(), matches(), int(), string(), double(),
type-free duration(). A rule outside this subset is refused when the CRD is written, with a
message saying so, rather than silently skipped."""

import re


class CelError(Exception):
    pass


class _NoSuchKey(Exception):
    pass


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[uU]?)|
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|
      (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,\[\](){}])|
      (?P<id>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.X)


def _tokenize(src):
    pos, out = 0, []
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise CelError(f"unexpected character at {pos}: {src[pos:pos + 10]!r}")
        pos = m.end()
        for kind in ("num", "str", "op", "id"):
            v = m.group(kind)
            if v is not None:
                out.append((kind, v))
                break
    out.append(("eof", None))
    return out


class _Parser:
    def __init__(self, src):
        self.t = _tokenize(src)
        self.i = 0

    def peek(self, value=None):
        kind, v = self.t[self.i]
        return v == value if value is not None else (kind, v)

    def take(self, value=None):
        kind, v = self.t[self.i]
        if value is not None and v != value:
            raise CelError(f"expected {value!r}, found {v!r}")
        self.i += 1
        return kind, v

    def parse(self):
        e = self.expr()
        if self.t[self.i][0] != "eof":
            raise CelError(f"unexpected {self.t[self.i][1]!r}")
        return e

    def expr(self):
        c = self.or_()
        if self.peek("?"):
            self.take("?")
            a = self.expr()
            self.take(":")
            b = self.expr()
            return ("cond", c, a, b)
        return c

    def or_(self):
        e = self.and_()
        while self.peek("||"):
            self.take()
            e = ("or", e, self.and_())
        return e

    def and_(self):
        e = self.rel()
        while self.peek("&&"):
            self.take()
            e = ("and", e, self.rel())
        return e

    def rel(self):
        e = self.add()
        while True:
            k, v = self.peek()
            if v in ("==", "!=", "<", "<=", ">", ">=") or (k == "id" and v == "in"):
                self.take()
                e = ("bin", v, e, self.add())
            else:
                return e

    def add(self):
        e = self.mul()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            e = ("bin", op, e, self.mul())
        return e

    def mul(self):
        e = self.unary()
        while self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            e = ("bin", op, e, self.unary())
        return e

    def unary(self):
        if self.peek("!"):
            self.take()
            return ("not", self.unary())
        if self.peek("-"):
            self.take()
            return ("neg", self.unary())
        return self.postfix()

    def postfix(self):
        e = self.primary()
        while True:
            if self.peek("."):
                self.take()
                _, name = self.take()
                if self.peek("("):
                    args = self.args()
                    e = ("method", name, e, args)
                else:
                    e = ("field", e, _unescape_property(name))
            elif self.peek("["):
                self.take()
                idx = self.expr()
                self.take("]")
                e = ("index", e, idx)
            else:
                return e

    def args(self):
        self.take("(")
        out = []
        if not self.peek(")"):
            out.append(self.expr())
            while self.peek(","):
                self.take()
                out.append(self.expr())
        self.take(")")
        return out

    def primary(self):
        kind, v = self.take()
        if kind == "num":
            if "." in v or "e" in v or "E" in v:
                return ("lit", float(v))
            return ("lit", int(v.rstrip("uU")))
        if kind == "str":
            body = v[1:-1]
            return ("lit", bytes(body, "utf-8").decode("unicode_escape"))
        if v == "(":
            e = self.expr()
            self.take(")")
            return e
        if v == "[":
            items = []
            if not self.peek("]"):
                items.append(self.expr())
                while self.peek(","):
                    self.take()
                    items.append(self.expr())
            self.take("]")
            return ("list", items)
        if v == "{":
            pairs = []
            if not self.peek("}"):
                while True:
                    k = self.expr()
                    self.take(":")
                    pairs.append((k, self.expr()))
                    if not self.peek(","):
                        break
                    self.take()
            self.take("}")
            return ("map", pairs)
        if kind == "id":
            if v in ("true", "false"):
                return ("lit", v == "true")
            if v == "null":
                return ("lit", None)
            if self.peek("("):
                return ("call", v, self.args())
            return ("var", v)
        raise CelError(f"unexpected {v!r}")


_MACROS = {"all", "exists", "exists_one", "filter", "map"}
_FUNCS = {"size", "int", "string", "double", "has", "duration", "type", "bool"}
_METHODS = {"size", "startsWith", "endsWith", "contains", "matches", "lowerAscii", "upperAscii"}


# CEL's reserved words, which a property name may not be as written: Kubernetes escapes such a
# property as __<word>__ (self.__namespace__ reads the field "namespace"), and "__", ".", "-"
# and "/" in any property name as __underscores__, __dot__, __dash__ and __slash__.
_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
             "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
             "void", "while"}


def _unescape_property(name):
    if name in _RESERVED:
        raise CelError(f"{name} is a reserved word: write the property as __{name}__")
    if name.startswith("__") and name.endswith("__") and name[2:-2] in _RESERVED:
        return name[2:-2]
    for escaped, plain in (("__underscores__", "__"), ("__dot__", "."), ("__dash__", "-"),
                           ("__slash__", "/")):
        name = name.replace(escaped, plain)
    return name


def compile_rule(src):
    """Parses a rule and checks it stays inside the supported subset; raises CelError."""
    tree = _Parser(src).parse()
    _check(tree)
    return tree


def _check(node):
    kind = node[0]
    if kind == "call":
        if node[1] not in _FUNCS:
            raise CelError(f"function {node[1]}() is not supported by kubesim's CEL subset")
        if node[1] == "has" and (len(node[2]) != 1 or node[2][0][0] != "field"):
            raise CelError("has() takes one field selection, e.g. has(self.spec)")
        for a in node[2]:
            _check(a)
    elif kind == "method":
        if node[1] not in _METHODS and node[1] not in _MACROS:
            raise CelError(f"method .{node[1]}() is not supported by kubesim's CEL subset")
        _check(node[2])
        for a in node[3]:
            _check(a)
    else:
        for child in node[1:]:
            if isinstance(child, tuple):
                _check(child)
            elif isinstance(child, list):
                for c in child:
                    if isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], tuple):
                        _check(c[0])
                        _check(c[1])
                    elif isinstance(c, tuple):
                        _check(c)


def evaluate(tree, bindings):
    return _Eval(bindings).ev(tree)


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_DUR_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class _Eval:
    def __init__(self, bindings):
        self.vars = dict(bindings)

    def ev(self, n):
        k = n[0]
        if k == "lit":
            return n[1]
        if k == "var":
            if n[1] not in self.vars:
                raise CelError(f"undeclared reference to '{n[1]}'")
            return self.vars[n[1]]
        if k == "list":
            return [self.ev(x) for x in n[1]]
        if k == "map":
            return {self.ev(a): self.ev(b) for a, b in n[1]}
        if k == "field":
            obj = self.ev(n[1])
            if not isinstance(obj, dict) or n[2] not in obj:
                raise _NoSuchKey(n[2])
            return obj[n[2]]
        if k == "index":
            obj, idx = self.ev(n[1]), self.ev(n[2])
            try:
                return obj[idx]
            except (KeyError, IndexError, TypeError):
                raise _NoSuchKey(str(idx))
        if k == "not":
            return not self._bool(self.ev(n[1]))
        if k == "neg":
            return -self.ev(n[1])
        if k == "and":
            try:
                left = self._bool(self.ev(n[1]))
            except _NoSuchKey:
                left = None
            if left is False:
                return False
            right = self._bool(self.ev(n[2]))
            if left is None:
                if right is False:
                    return False
                raise _NoSuchKey("and")
            return right
        if k == "or":
            try:
                left = self._bool(self.ev(n[1]))
            except _NoSuchKey:
                left = None
            if left is True:
                return True
            right = self._bool(self.ev(n[2]))
            if left is None:
                if right is True:
                    return True
                raise _NoSuchKey("or")
            return right
        if k == "cond":
            return self.ev(n[2]) if self._bool(self.ev(n[1])) else self.ev(n[3])
        if k == "bin":
            return self._bin(n[1], self.ev(n[2]), self.ev(n[3]))
        if k == "call":
            return self._call(n[1], n[2])
        if k == "method":
            return self._method(n[1], n[2], n[3])
        raise CelError(f"cannot evaluate {k}")

    @staticmethod
    def _bool(v):
        if not isinstance(v, bool):
            raise CelError("no such overload: expected bool")
        return v

    @staticmethod
    def _bin(op, a, b):
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == "in":
            return a in b
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        if op == "%":
            return a % b
        raise CelError(f"unknown operator {op}")

    def _call(self, name, args):
        if name == "has":
            target = args[0]
            try:
                obj = self.ev(target[1])
            except _NoSuchKey:
                return False
            return isinstance(obj, dict) and target[2] in obj
        vals = [self.ev(a) for a in args]
        if name == "size":
            return len(vals[0])
        if name == "int":
            return int(vals[0])
        if name == "double":
            return float(vals[0])
        if name == "string":
            return str(vals[0]).lower() if isinstance(vals[0], bool) else str(vals[0])
        if name == "bool":
            return bool(vals[0])
        if name == "duration":
            s, total, pos = vals[0], 0.0, 0
            for m in _DUR.finditer(s):
                if m.start() != pos:
                    raise CelError(f"invalid duration {s!r}")
                total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
                pos = m.end()
            if pos != len(s) or not s:
                raise CelError(f"invalid duration {s!r}")
            return total
        if name == "type":
            return type(vals[0]).__name__
        raise CelError(f"unknown function {name}")

    def _method(self, name, target, args):
        if name in _MACROS:
            coll = self.ev(target)
            if len(args) != 2 or args[0][0] != "var":
                raise CelError(f"{name}() takes a variable and an expression")
            var, body = args[0][1], args[1]
            items = list(coll.keys()) if isinstance(coll, dict) else list(coll)
            saved = self.vars.get(var)
            try:
                results = []
                for it in items:
                    self.vars[var] = it
                    results.append((it, self.ev(body)))
            finally:
                if saved is None:
                    self.vars.pop(var, None)
                else:
                    self.vars[var] = saved
            if name == "all":
                return all(self._bool(r) for _, r in results)
            if name == "exists":
                return any(self._bool(r) for _, r in results)
            if name == "exists_one":
                return sum(1 for _, r in results if self._bool(r)) == 1
            if name == "filter":
                return [it for it, r in results if self._bool(r)]
            return [r for _, r in results]
        obj = self.ev(target)
        vals = [self.ev(a) for a in args]
        if name == "size":
            return len(obj)
        if name == "startsWith":
            return obj.startswith(vals[0])
        if name == "endsWith":
            return obj.endswith(vals[0])
        if name == "contains":
            return vals[0] in obj
        if name == "matches":
            return re.search(vals[0], obj) is not None
        if name == "lowerAscii":
            return obj.lower()
        if name == "upperAscii":
            return obj.upper()
        raise CelError(f"unknown method {name}")


def run_rule(tree, self_value, old_value=None, has_old=False):
    """Evaluates a compiled rule. Returns True/False; a missing field counts as an error, which
    kube-apiserver reports as the rule failing with 'no such key'."""
    bindings = {"self": self_value}
    if has_old:
        bindings["oldSelf"] = old_value
    try:
        return bool(evaluate(tree, bindings))
    except _NoSuchKey as e:
        raise CelError(f"no such key: {e}")


def references_old_self(tree):
    if tree[0] == "var" and tree[1] == "oldSelf":
        return True
    for child in tree[1:]:
        if isinstance(child, tuple) and references_old_self(child):
            return True
        if isinstance(child, list):
            for c in child:
                if isinstance(c, tuple) and c and isinstance(c[0], str) and references_old_self(c):
                    return True
                if isinstance(c, tuple) and c and isinstance(c[0], tuple):
                    if any(references_old_self(x) for x in c):
                        return True
    return False
