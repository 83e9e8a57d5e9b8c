"""No bare status strings: a status, role, state or kind is named by its enum in safecall/domain.py, never by its text.

The rule reads the code's syntax tree. It finds a string literal equal to a value of any domain enum when it is
- compared (==, !=, is, in, not in), or a member of a tuple, list or set something is tested against;
- assigned to a status, role, state, kind, channel, disposition or list_kind attribute (tuple assignments too), or
  passed as such a keyword argument;
- in the values of a SQL `.in_(...)` / `.notin_(...)`.
`"busy" in text` (a literal tested against a name) is a search in text, not a status, and is not flagged.
Migrations are not read: they must freeze the values they store."""

from __future__ import annotations

import ast
from enum import Enum
from pathlib import Path

import safecall.domain

PACKAGE = Path(__file__).resolve().parents[1] / "safecall"
STATUS_ATTRIBUTES = {"status", "role", "state", "kind", "channel", "disposition", "list_kind"}
DOMAIN_VALUES = frozenset(
    member.value
    for thing in vars(safecall.domain).values()
    if isinstance(thing, type) and issubclass(thing, Enum) and thing.__module__ == safecall.domain.__name__
    for member in thing
)
# (file, value): words that are not the domain's, though spelled like one of its values.
ALLOWED = {
    # A simulated person's scripted behaviour (the demo's telephone line), not a stored status.
    ("safecall/telephony/simulated.py", "busy"),
    ("safecall/telephony/simulated.py", "no_answer"),
    ("safecall/telephony/simulated.py", "machine"),
}
COLLECTIONS = (ast.Tuple, ast.List, ast.Set, ast.SetComp, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.Dict)


def _literals(node: ast.AST) -> list[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _is_status_target(target: ast.AST) -> bool:
    return isinstance(target, ast.Attribute) and target.attr in STATUS_ATTRIBUTES


def _candidates(node: ast.AST) -> list[ast.Constant]:
    if isinstance(node, ast.Compare):
        found = [c for right in node.comparators for c in _literals(right)]
        searches_text = (
            isinstance(node.left, ast.Constant)
            and all(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)
            and not isinstance(node.comparators[0], COLLECTIONS)
        )  # `"busy" in text`
        return found if searches_text else found + _literals(node.left)
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        found = []
        for target in targets:
            if _is_status_target(target) and node.value is not None and not isinstance(node.value, ast.Tuple):
                found += _literals(node.value)
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                # Not strict: a starred target (a, *rest = ...) takes several values.
                found += [
                    c
                    for t, v in zip(target.elts, node.value.elts, strict=False)
                    if _is_status_target(t)
                    for c in _literals(v)
                ]
        return found
    if isinstance(node, ast.keyword) and node.arg in STATUS_ATTRIBUTES:
        return _literals(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("in_", "notin_"):
        return [c for argument in node.args for c in _literals(argument)]
    return []


def bare_status_strings(source: str, values=DOMAIN_VALUES) -> list[tuple[int, str]]:
    """(line, value) of every bare status string in `source`, in order."""
    found = {
        (c.lineno, c.col_offset, c.value)
        for node in ast.walk(ast.parse(source))
        for c in _candidates(node)
        if c.value in values
    }
    return [(line, value) for line, _, value in sorted(found)]


def test_the_rule_finds_each_kind_of_bare_status_string_and_nothing_else():
    planted = """
if user.role == "officer": pass
if "open" != run.status: pass
if task.kind in ("visit", "callback", "elsewhere"): pass
person.status = "paused"
task.status, task.note = "closed", "not home"
query.where(Delivery.status.in_(["pending", "failed"]))
VisitTask(kind="number", team="visit")
if "busy" in text: pass
label = "open"
print("sent")
if digits == {"acknowledged"}: pass
"""
    assert bare_status_strings(planted) == [
        (2, "officer"),
        (3, "open"),
        (4, "visit"),
        (4, "callback"),
        (5, "paused"),
        (6, "closed"),
        (7, "pending"),
        (7, "failed"),
        (8, "number"),
        (12, "acknowledged"),
    ]


def test_the_rule_reads_the_values_from_the_domain_enums():
    assert {"open", "paused", "officer", "acknowledged", "sent", "team_list", "sms"} <= DOMAIN_VALUES
    assert bare_status_strings('if x == "open": pass', values=frozenset()) == []


def test_no_bare_status_strings_in_safecall():
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue
        name = path.relative_to(PACKAGE.parent).as_posix()
        offending += [
            f"{name}:{line}: {value!r}"
            for line, value in bare_status_strings(path.read_text(encoding="utf-8"))
            if (name, value) not in ALLOWED
        ]
    assert not offending, "name these by their enum in safecall/domain.py:\n" + "\n".join(offending)
