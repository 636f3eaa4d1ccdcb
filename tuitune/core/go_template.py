"""A small evaluator of the Go text/template subset that Ollama's chat templates use.

Written here because no maintained Python package renders Go templates, and tuitune must check a
Modelfile's TEMPLATE against the model's own chat template (Jinja) before it says the export is done.
Supported: text, {{ pipeline }}, trim markers {{- -}}, if / else if / else / end, range (with
`$i, $x :=`), variables (`$x := ...`, `$x = ...`, `$`, `$.Field`), fields (.Role, .Content, $.Messages),
string/number/bool literals, parentheses and the functions eq, ne, lt, le, gt, ge, and, or, not,
len, slice, index. Anything else raises TemplateError, so an unsupported template is never
rendered wrongly in silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(\()|(\))|(:=)|(,)|([^\s(),]+))')


class TemplateError(ValueError):
    pass


@dataclass
class _Node:
    kind: str  # text | out | if | range | set | assign
    text: str = ""
    expr: list[Any] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    branches: list[tuple[list[Any], list[_Node]]] = field(default_factory=list)  # if: (cond, body)...
    otherwise: list[_Node] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def render(template: str, data: dict[str, Any]) -> str:
    """Render `template` with `data` as the dot ({{ .Field }} reads data["Field"])."""
    nodes = _parse(_lex(template))
    out: list[str] = []
    _exec(nodes, data, _Scope({"$": data}), out)
    return "".join(out)


class _Scope:
    """Variables of a block; `$x := v` declares here, `$x = v` assigns where $x was declared."""

    def __init__(self, names: dict[str, Any] | None = None, parent: _Scope | None = None) -> None:
        self.names = names or {}
        self.parent = parent

    def child(self) -> _Scope:
        return _Scope({}, self)

    def __contains__(self, name: str) -> bool:
        return name in self.names or (self.parent is not None and name in self.parent)

    def __getitem__(self, name: str) -> Any:
        if name in self.names:
            return self.names[name]
        if self.parent is None:
            raise KeyError(name)
        return self.parent[name]

    def declare(self, name: str, value: Any) -> None:
        self.names[name] = value

    def assign(self, name: str, value: Any) -> None:
        scope: _Scope | None = self
        while scope is not None and name not in scope.names:
            scope = scope.parent
        if scope is None:
            raise TemplateError(f"assignment to undeclared variable {name}")
        scope.names[name] = value


# ------------------------------------------------------------------------------ lexing and parsing


def _lex(template: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        if items and items[-1][0] == "trim-next":
            items.pop()
            text = text.lstrip()
        if text:
            items.append(("text", text))
        action = m.group(2).strip()
        if not action.startswith("/*"):
            items.append(("action", action))
        if m.group(3):
            items.append(("trim-next", ""))
        pos = m.end()
    text = template[pos:]
    if items and items[-1][0] == "trim-next":
        items.pop()
        text = text.lstrip()
    if text:
        items.append(("text", text))
    return items


def _parse(items: list[tuple[str, str]]) -> list[_Node]:
    stack: list[tuple[_Node, list[_Node]]] = []
    root: list[_Node] = []
    current = root
    for kind, value in items:
        if kind == "text":
            current.append(_Node("text", text=value))
            continue
        word = value.split(None, 1)[0] if value else ""
        rest = value[len(word) :].strip()
        if word == "if":
            node = _Node("if")
            node.branches.append((_tokens(rest), []))
            current.append(node)
            stack.append((node, current))
            current = node.branches[-1][1]
        elif word == "range":
            node = _Node("range")
            names, expr = _range_head(rest)
            node.names, node.expr = names, _tokens(expr)
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif word == "else":
            if not stack:
                raise TemplateError("{{ else }} outside if/range")
            node = stack[-1][0]
            if rest.startswith("if ") and node.kind == "if":
                node.branches.append((_tokens(rest[3:]), []))
                current = node.branches[-1][1]
            elif rest:
                raise TemplateError(f"unsupported: else {rest}")
            else:
                current = node.otherwise
        elif word == "end":
            if not stack:
                raise TemplateError("{{ end }} without if/range")
            _, current = stack.pop()
        elif word in ("with", "define", "template", "block", "break", "continue"):
            raise TemplateError(f"unsupported action: {word}")
        elif word.startswith("$") and rest.startswith(":="):
            current.append(_Node("set", names=[word], expr=_tokens(rest[2:])))
        elif word.startswith("$") and rest.startswith("=") and not rest.startswith("=="):
            current.append(_Node("assign", names=[word], expr=_tokens(rest[1:])))
        else:
            current.append(_Node("out", expr=_tokens(value)))
    if stack:
        raise TemplateError("missing {{ end }}")
    return root


def _range_head(text: str) -> tuple[list[str], str]:
    if ":=" not in text:
        return [], text
    names, expr = text.split(":=", 1)
    return [n.strip() for n in names.split(",")], expr


def _tokens(text: str) -> list[Any]:
    """A pipeline as a nested list: ["call", word, word, [sub-pipeline], ...]."""
    out: list[Any] = []
    stack: list[list[Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot read {text[pos:]!r}")
        pos = m.end()
        string, open_, close, _, comma, word = m.groups()
        if string is not None:
            out.append(("str", bytes(string[1:-1], "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")))
        elif open_:
            stack.append(out)
            out = []
        elif close:
            if not stack:
                raise TemplateError(f"unbalanced ) in {text!r}")
            sub, out = out, stack.pop()
            out.append(("sub", sub))
        elif comma:
            raise TemplateError(f"unexpected , in {text!r}")
        elif word:
            out.append(("word", word))
    if stack:
        raise TemplateError(f"unbalanced ( in {text!r}")
    return out


# ------------------------------------------------------------------------------ evaluation


def _exec(nodes: list[_Node], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "out":
            out.append(_text(_eval(node.expr, dot, scope)))
        elif node.kind == "set":
            scope.declare(node.names[0], _eval(node.expr, dot, scope))
        elif node.kind == "assign":
            scope.assign(node.names[0], _eval(node.expr, dot, scope))
        elif node.kind == "if":
            for cond, body in node.branches:
                if _truth(_eval(cond, dot, scope)):
                    _exec(body, dot, scope.child(), out)
                    break
            else:
                _exec(node.otherwise, dot, scope.child(), out)
        elif node.kind == "range":
            items = _eval(node.expr, dot, scope)
            seq = list(items.items()) if isinstance(items, dict) else list(enumerate(items or []))
            if not seq:
                _exec(node.otherwise, dot, scope.child(), out)
            for key, value in seq:
                inner = scope.child()
                if len(node.names) == 2:
                    inner.declare(node.names[0], key)
                    inner.declare(node.names[1], value)
                elif len(node.names) == 1:
                    inner.declare(node.names[0], value)
                _exec(node.body, value, inner, out)


def _eval(expr: list[Any], dot: Any, scope: _Scope) -> Any:
    if not expr:
        raise TemplateError("empty pipeline")
    head = expr[0]
    if head[0] == "word" and head[1] in _FUNCS:
        args = [_value(a, dot, scope) for a in expr[1:]]
        return _FUNCS[head[1]](*args)
    if len(expr) != 1:
        raise TemplateError(f"unsupported pipeline {expr!r}")
    return _value(head, dot, scope)


def _value(token: tuple[str, Any], dot: Any, scope: _Scope) -> Any:
    kind, value = token
    if kind == "str":
        return value
    if kind == "sub":
        return _eval(value, dot, scope)
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value == ".":
        return dot
    if value.startswith("."):
        return _fields(dot, value[1:])
    if value.startswith("$"):
        name, _, path = value.partition(".")
        if name not in scope:
            raise TemplateError(f"undefined variable {name}")
        return _fields(scope[name], path) if path else scope[name]
    raise TemplateError(f"unsupported word {value!r}")


def _fields(obj: Any, path: str) -> Any:
    for name in path.split("."):
        if not isinstance(obj, dict):
            raise TemplateError(f"field .{name} of a non-struct")
        obj = obj.get(name)
    return obj


def _truth(value: Any) -> bool:
    return bool(value)


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _slice(seq: Any, *bounds: int) -> Any:
    if len(bounds) == 1:
        return seq[bounds[0] :]
    if len(bounds) == 2:
        return seq[bounds[0] : bounds[1]]
    raise TemplateError("slice takes 1 or 2 bounds")


def _and(*args: Any) -> Any:
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if _truth(a):
            return a
    return args[-1]


_FUNCS = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "and": _and,
    "or": _or,
    "not": lambda a: not _truth(a),
    "len": lambda a: len(a),
    "slice": _slice,
    "index": lambda a, *keys: _index(a, keys),
}


def _index(obj: Any, keys: tuple[Any, ...]) -> Any:
    for k in keys:
        obj = obj[k]
    return obj
