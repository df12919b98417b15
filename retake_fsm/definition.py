"""states.yaml as pydantic models, loaded with positions: every problem as FILE:LINE:COL.

The YAML is composed with PyYAML (nodes keep their start marks), then
constructed and validated by the models below (all `extra="forbid"`), then
checked for meaning: unknown states, unreachable states, no route from
`initial` to `target`, unknown actions, `on_error` edges that are unknown or
not allowed, error kinds that are never retried. Every problem found is
reported at once as a `DefinitionError`; the first one does not hide the rest.
"""

from __future__ import annotations

import difflib
import re
import types
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)

from .errors import ConfigError, DefinitionError, retryable_kinds
from .settings import Duration, Settings, parse_duration

Problem = tuple[str, int, int, str]
Loc = tuple[int | str, ...]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Attributes the engine's model carries: a trigger may not shadow them.
RESERVED_TRIGGERS = frozenset({"state", "trigger", "ctx", "get_graph"})
RESERVED_PREFIXES = ("to_", "may_", "is_")


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _non_negative_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Model):
    """Bounded attempts, exponential backoff with jitter, only for the kinds named."""

    attempts: int = Field(default=1, ge=1)
    initial: Duration = 1.0
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay: Duration = 30.0
    jitter: Annotated[float, BeforeValidator(_non_negative_duration)] = 0.0
    retry_on: list[str] = Field(default_factory=list)


class StateSpec(_Model):
    description: str = ""
    activity: str | None = None  # action run while in this state; returns a trigger
    on_error: str | None = None  # trigger fired when the activity fails


class TransitionSpec(_Model):
    source: Annotated[list[str], BeforeValidator(_listify)]
    dest: str
    actions: list[str] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = None  # total, across every attempt of every action
    on_error: str | None = None  # trigger fired when this transition fails for good
    on_demand: bool = False  # never part of a forward route (recover, stop)
    run_all: bool = False  # every action runs even if an earlier one failed


class Definition(_Model):
    version: Literal[1]
    initial: str
    target: str
    reconcile: str | None = None
    plugins: list[str] = Field(default_factory=list)
    states: dict[str, StateSpec]
    transitions: dict[str, TransitionSpec]
    settings: dict[str, Any] = Field(default_factory=dict)

    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    def allows(self, trigger: str, state: str) -> bool:
        spec = self.transitions.get(trigger)
        return spec is not None and state in spec.source

    def actions(self) -> list[str]:
        """Every action name the definition uses, in order of first use."""
        names: list[str] = []
        if self.reconcile:
            names.append(self.reconcile)
        for t in self.transitions.values():
            names.extend(t.actions)
        names.extend(s.activity for s in self.states.values() if s.activity)
        return list(dict.fromkeys(names))

    def route(self, source: str, dest: str) -> list[str] | None:
        """Shortest list of forward (not on-demand) triggers from `source` to `dest`."""
        return _shortest_route(
            [(n, t.source, t.dest) for n, t in self.transitions.items() if not t.on_demand],
            source, dest,
        )


def _shortest_route(
    edges: Sequence[tuple[str, Sequence[str], str]], source: str, dest: str
) -> list[str] | None:
    seen = {source}
    queue: deque[tuple[str, list[str]]] = deque([(source, [])])
    while queue:
        state, path = queue.popleft()
        if state == dest:
            return path
        for name, sources, to in edges:
            if state in sources and to not in seen:
                seen.add(to)
                queue.append((to, [*path, name]))
    return None


# --- positions -------------------------------------------------------------------------------


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _locate(root: yaml.Node, loc: Loc, *, key: bool = False) -> yaml.Node:
    """The node `loc` points at; for a missing entry, the key owning the mapping it is
    missing from; with `key`, the key node of the last entry (for unknown fields)."""
    node: yaml.Node = root
    owner: yaml.Node | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    owner, node = k, v
                    break
            else:
                return owner or node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            owner, node = None, node.value[part]
        else:
            break
    return owner if key and owner is not None else node


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_problems(
    exc: ValidationError, root: yaml.Node, fname: str, model: type[BaseModel], prefix: Loc = ()
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        where = _dotted(prefix + loc)
        if err["type"] == "extra_forbidden":
            node = _locate(root, prefix + loc, key=True)
            owner = _model_at(model, loc[:-1])
            allowed = f" (allowed: {', '.join(owner.model_fields)})" if owner else ""
            msg = f"{where}: unknown field{allowed}"
        elif err["type"] == "missing":
            node = _locate(root, prefix + loc)
            msg = f"{where}: missing required field {loc[-1]!r}"
        else:
            node = _locate(root, prefix + loc)
            text = str(err["msg"]).removeprefix("Value error, ")
            msg = f"{where}: {text}"
        problems.append((fname, *_mark(node), msg))
    return problems


def _duplicate_keys(node: yaml.Node, fname: str) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                if k.value in seen:
                    first = _mark(seen[k.value])[0]
                    yield (fname, *_mark(k), f"duplicate key {k.value!r} (first at line {first})")
                else:
                    seen[k.value] = k
            yield from _duplicate_keys(v, fname)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, fname)


# --- meaning ---------------------------------------------------------------------------------


class _Checker:
    """Semantic checks on the raw data, defensive about shapes the schema already rejected."""

    def __init__(self, data: dict[str, Any], root: yaml.Node, fname: str) -> None:
        self.data, self.root, self.fname = data, root, fname
        self.problems: list[Problem] = []
        raw_states = data.get("states")
        self.states: dict[str, Any] = raw_states if isinstance(raw_states, dict) else {}
        raw_trans = data.get("transitions")
        self.transitions: dict[str, Any] = raw_trans if isinstance(raw_trans, dict) else {}

    def add(self, loc: Loc, msg: str, *, key: bool = False) -> None:
        self.problems.append((self.fname, *_mark(_locate(self.root, loc, key=key)), msg))

    def sources(self, name: str) -> list[tuple[Loc, str]]:
        t = self.transitions.get(name)
        src = t.get("source") if isinstance(t, dict) else None
        if isinstance(src, str):
            return [(("transitions", name, "source"), src)]
        if isinstance(src, list):
            return [(("transitions", name, "source", i), s)
                    for i, s in enumerate(src) if isinstance(s, str)]
        return []

    def run(self, registry: set[str] | None, plugin_errors: dict[int, str]) -> list[Problem]:
        self.names()
        graph_ok = self.known_states()
        if graph_ok:
            self.reachability()
        self.edges()
        self.kinds()
        for i, err in plugin_errors.items():
            self.add(("plugins", i), err)
        if registry is not None and not plugin_errors:  # else "unknown" may just be unimported
            self.action_names(registry)
        return self.problems

    def names(self) -> None:
        for name in self.states:
            if not NAME_RE.match(str(name)):
                self.add(("states", name), f"state name {name!r}: use lowercase letters, "
                         "digits and '_', starting with a letter", key=True)
        for name in self.transitions:
            if not NAME_RE.match(str(name)) or name in RESERVED_TRIGGERS \
                    or str(name).startswith(RESERVED_PREFIXES):
                self.add(("transitions", name), f"transition name {name!r}: use lowercase "
                         "letters, digits and '_', not 'state'/'trigger'/'ctx', not starting "
                         "with to_/may_/is_", key=True)

    def known_states(self) -> bool:
        ok = bool(self.states)
        declared = ", ".join(map(str, self.states))
        for field in ("initial", "target"):
            value = self.data.get(field)
            if isinstance(value, str) and value not in self.states:
                self.add((field,), f"{field}: unknown state {value!r} (declared: {declared})")
                ok = False
        for name, t in self.transitions.items():
            if not isinstance(t, dict):
                ok = False
                continue
            srcs = self.sources(name)
            if not srcs:
                ok = False
            for loc, s in srcs:
                if s not in self.states:
                    self.add(loc, f"transitions.{name}.source: unknown state {s!r} "
                             f"(declared: {declared})")
                    ok = False
            dest = t.get("dest")
            if not isinstance(dest, str):
                ok = False
            elif dest not in self.states:
                self.add(("transitions", name, "dest"),
                         f"transitions.{name}.dest: unknown state {dest!r} (declared: {declared})")
                ok = False
        return ok

    def reachability(self) -> None:
        initial, target = self.data.get("initial"), self.data.get("target")
        if not isinstance(initial, str):
            return
        edges = [(n, [s for _, s in self.sources(n)], t["dest"])
                 for n, t in self.transitions.items()]
        reached = {initial}
        changed = True
        while changed:
            changed = False
            for _, srcs, dest in edges:
                if dest not in reached and reached.intersection(srcs):
                    reached.add(dest)
                    changed = True
        for state in self.states:
            if state not in reached:
                self.add(("states", state), f"state {state!r} is unreachable from the initial "
                         f"state {initial!r}: no transition leads to it", key=True)
        if isinstance(target, str) and target in self.states:
            forward = [e for e in edges if not self.transitions[e[0]].get("on_demand")]
            if _shortest_route(forward, initial, target) is None:
                self.add(("target",), f"target: no path from {initial!r} to {target!r} over "
                         "forward (not on_demand) transitions")

    def edges(self) -> None:
        for name, t in self.transitions.items():
            if not isinstance(t, dict) or not isinstance(t.get("on_error"), str):
                continue
            self.edge(("transitions", name, "on_error"), t["on_error"],
                      [s for _, s in self.sources(name)], f"transitions.{name}.on_error")
        for name, s in self.states.items():
            if isinstance(s, dict) and isinstance(s.get("on_error"), str):
                self.edge(("states", name, "on_error"), s["on_error"], [name],
                          f"states.{name}.on_error")

    def edge(self, loc: Loc, trigger: str, from_states: list[str], where: str) -> None:
        if trigger not in self.transitions:
            hint = _did_you_mean(trigger, self.transitions)
            self.add(loc, f"{where}: unknown transition {trigger!r}{hint}")
            return
        allowed = {s for _, s in self.sources(trigger)}
        for state in from_states:
            if state not in allowed:
                self.add(loc, f"{where}: {trigger!r} is not allowed from {state!r} "
                         f"(its source: {', '.join(sorted(allowed)) or 'none'})")

    def kinds(self) -> None:
        allowed = retryable_kinds()
        for name, t in self.transitions.items():
            retry = t.get("retry") if isinstance(t, dict) else None
            kinds = retry.get("retry_on") if isinstance(retry, dict) else None
            if not isinstance(kinds, list):
                continue
            for i, kind in enumerate(kinds):
                if isinstance(kind, str) and kind not in allowed:
                    self.add(("transitions", name, "retry", "retry_on", i),
                             f"transitions.{name}.retry.retry_on: {kind!r} is not a retryable "
                             f"error kind (choose from: {', '.join(sorted(allowed))})")

    def action_names(self, registry: set[str]) -> None:
        def check(loc: Loc, value: Any, where: str) -> None:
            if isinstance(value, str) and value not in registry:
                self.add(loc, f"{where}: unknown action {value!r}{_did_you_mean(value, registry)}"
                         " (actions are built in or come from a module listed in `plugins:`)")

        check(("reconcile",), self.data.get("reconcile"), "reconcile")
        for name, s in self.states.items():
            if isinstance(s, dict):
                check(("states", name, "activity"), s.get("activity"), f"states.{name}.activity")
        for name, t in self.transitions.items():
            acts = t.get("actions") if isinstance(t, dict) else None
            for i, act in enumerate(acts if isinstance(acts, list) else []):
                check(("transitions", name, "actions", i), act, f"transitions.{name}.actions")


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _load_registry(plugins: Any) -> tuple[set[str], dict[int, str], str | None]:
    """Names of built-in and plugin actions; import errors per plugin index; a built-in failure."""
    from . import actions

    builtin_error = None
    try:
        actions.load_builtin()
    except Exception as exc:  # another module's bug must still be reported, in one line
        builtin_error = f"built-in actions failed to import: {type(exc).__name__}: {exc}"
    errors: dict[int, str] = {}
    for i, mod in enumerate(plugins if isinstance(plugins, list) else []):
        if not isinstance(mod, str):
            continue
        try:
            actions.load_plugins([mod])
        except Exception as exc:
            errors[i] = (f"plugins: cannot import {mod!r}: {type(exc).__name__}: {exc} "
                         "(is it on PYTHONPATH?)")
    return set(actions.REGISTRY), errors, builtin_error


# --- loading ---------------------------------------------------------------------------------


def _compose(text: str, fname: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
        return root, data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        ctx = exc.context_mark
        if exc.problem and exc.context and ctx is not None:
            problem += (f" ({exc.context} that starts at line {ctx.line + 1}, "
                        f"column {ctx.column + 1})")
        raise DefinitionError([(fname, line, col, f"YAML syntax: {problem}")]) from exc
    finally:
        loader.dispose()


def load_definition(path: str | Path, *, check_actions: bool = True) -> Definition:
    """Load and check a states.yaml; every problem at once as a DefinitionError.

    With `check_actions`, built-in actions and the definition's `plugins:` are
    imported so unknown action names are reported.
    """
    fname = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{fname}: no such file",
                          hint="pass --states FILE or set RETAKE_STATES") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{fname}: cannot read it: {exc}") from exc
    root, data = _compose(text, fname)
    if root is None or not isinstance(data, dict):
        raise DefinitionError([(fname, 1, 1, "expected a mapping with version, initial, "
                                             "target, states, transitions, settings")])
    problems = list(_duplicate_keys(root, fname))
    definition: Definition | None = None
    try:
        definition = Definition.model_validate(data)
    except ValidationError as exc:
        problems += _schema_problems(exc, root, fname, Definition)
    block = data.get("settings")
    if isinstance(block, dict):
        try:
            Settings.model_validate(block)
        except ValidationError as exc:
            problems += _schema_problems(exc, root, fname, Settings, ("settings",))
    registry: set[str] | None = None
    plugin_errors: dict[int, str] = {}
    if check_actions:
        registry, plugin_errors, builtin_error = _load_registry(data.get("plugins"))
        if builtin_error:
            problems.append((fname, 1, 1, builtin_error))
    problems += _Checker(data, root, fname).run(registry, plugin_errors)
    if problems or definition is None:
        raise DefinitionError(sorted(set(problems), key=lambda p: (p[1], p[2], p[3])))
    definition._path = Path(path)
    return definition


def summary(definition: Definition) -> str:
    """One line: what the definition declares."""
    return (f"{len(definition.states)} states, {len(definition.transitions)} transitions, "
            f"{len(definition.actions())} actions; {definition.initial} -> {definition.target}")
