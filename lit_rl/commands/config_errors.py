"""jsonargparse's parse errors as one line: the key, the problem and, for a misspelled key or
class, the closest valid ones. jsonargparse reports a bad value inside ``model`` or ``data`` as
a tree of the union types it tried (60 lines with the usage); the tree is read here line by line
for the key path and the one error that matters."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import re
import sys
import typing
from collections.abc import Iterable

from lit_rl.commands.catalog import LINKED

# Lines of the tree that only describe jsonargparse's attempts, never the user's mistake.
NOISE = re.compile(
    r"Does not validate against any of the Union subtypes|Subtypes:|Errors:|Given value type:|Expected a path but"
)
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _class(path: str) -> type | None:
    module_name, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


def config_keys(cls: type) -> list[str]:
    """The keys a class takes in a config: a dataclass's fields, else its ``__init__`` parameters
    and, through ``**kwargs``, its parents' (as jsonargparse reads them)."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    keys: list[str] = []
    for klass in cls.__mro__[:-1]:  # not object
        if "__init__" not in vars(klass):
            continue
        try:
            parameters = inspect.signature(klass.__init__).parameters.values()
        except (TypeError, ValueError):  # a C extension's: no suggestions
            break
        keys += [p.name for p in parameters if p.kind in NAMED and p.name not in ("self", *LINKED, *keys)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return keys


def _nested_class(cls: type, key: str) -> type | None:
    """The class of ``cls``'s parameter ``key`` (``EnvConfig`` for the DataModule's ``env``)."""
    try:
        hints = typing.get_type_hints(cls if dataclasses.is_dataclass(cls) else cls.__init__)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: no suggestion, not an error
        return None
    hint = hints.get(key)
    return next((t for t in (*typing.get_args(hint), hint) if isinstance(t, type) and t is not type(None)), None)


def _type_name(text: str) -> str:
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text).replace("typing.", "")
    if match := re.fullmatch(r"Literal\[(.*)\]", text):
        return match[1].replace(", ", " or ")
    return "null" if text == "NoneType" else text


def _suggest(wrong: str, valid: Iterable[str], prefix: str = "--") -> str:
    close = difflib.get_close_matches(wrong, list(valid), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(prefix + c for c in close)}?" if close else ""


def class_path(cls: type) -> str:
    """The shortest import path of a class: ``lit_rl.algos.DDPG``, not ``lit_rl.algos.ddpg.DDPG``."""
    parts = cls.__module__.split(".")
    for i in range(1, len(parts)):
        if getattr(sys.modules.get(".".join(parts[:i])), cls.__name__, None) is cls:
            return f"{'.'.join(parts[:i])}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def registered(base: type) -> list[str]:
    """The class paths a config may give for ``base``: lit_rl's algorithms, else every subclass
    imported so far that can be built."""
    from lit_rl.algos import OffPolicyAlgorithm, algorithms

    if base is OffPolicyAlgorithm:
        return [class_path(cls) for cls in algorithms().values()]
    found, todo = [], [base]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if not cls.__name__.startswith("_") and not inspect.isabstract(cls):
            found.append(class_path(cls))
    return sorted(set(found))


def _unknown_class(key: str, given: str, base: type | None) -> str:
    if base is None:
        return f"--{key} {given}: no such class"
    names = registered(base)
    short = {name.rsplit(".", 1)[-1]: name for name in names}
    close = difflib.get_close_matches(given.rsplit(".", 1)[-1], short, n=1, cutoff=0.7)
    hint = f"; did you mean {short[close[0]]}?" if close else ""
    return f"--{key} {given}: not one of the registered {base.__name__} classes, {', '.join(names)}{hint}"


def explain(message: str, options: Iterable[str] = ()) -> str:
    """One line for a jsonargparse error ``message``; ``options`` are the parser's option strings
    (``--trainer.max_epochs``, ...), the candidates for a misspelled top-level key."""
    # Each scope: the indentation it covers, its key path, the class whose keys are read there,
    # the key that chose that class, the union's base class and the value given there.
    if message.startswith("Problems parsing config"):  # YAML syntax: the location is on the next lines
        return " ".join(line.strip() for line in message.splitlines())
    scopes = [{"indent": -1, "path": "", "cls": None, "owner": "", "base": None, "given": None}]
    found: list[tuple[dict, str]] = []  # (scope, leaf text) in order
    for raw in message.splitlines():
        text = raw.strip()
        if not text:
            continue
        indent = len(raw) - len(raw.lstrip(" -"))
        text = text.removeprefix("- ")
        while scopes[-1]["indent"] >= indent:
            scopes.pop()
        scope = scopes[-1]
        if match := re.match(r'Parser key "([^"]+)":\s*(.*)', text):
            path = ".".join(p for p in (scope["path"], match[1]) if p)
            scope = {**scope, "indent": indent, "path": path, "cls": None, "owner": path, "base": None, "given": None}
            scopes.append(scope)
            text = match[2]
        elif match := re.match(r"Problem with given class_path '([^']+)':", text):
            cls = _class(match[1])
            if cls is None:
                return _unknown_class(scope["owner"], match[1], scope["base"])
            path = scope["path"] if dataclasses.is_dataclass(cls) else f"{scope['path']}.init_args"
            scopes.append({**scope, "indent": indent, "path": path, "cls": cls})
            continue
        elif match := re.match(r"Subtypes: \[<class '([\w.]+)'>", text):
            scope["base"] = _class(match[1])
            continue
        elif match := re.match(r"Given value: (.*)", text):
            scope["given"] = match[1]
            continue
        if text and not NOISE.match(text):
            found.append((scope, text))

    expected: dict[str, list[str]] = {}  # the types of a union, by key
    for scope, text in found:
        key, cls = scope["path"], scope["cls"]
        if match := re.match(r"Option '([^']+)' is not accepted", text):
            keys = config_keys(cls) if cls else []
            where = f" of {class_path(cls)}" if cls else ""
            return f"--{key}.{match[1]}: no such key{where}{_suggest(match[1], keys, f'--{key}.')}"
        if match := re.match(r"unrecognized arguments: --([^\s=]+)", text):
            wrong = match[1]
            if cls is None:
                return f"--{wrong}: no such key{_suggest('--' + wrong, options, '')}"
            parent, _, last = wrong.rpartition(".")
            nested = _nested_class(cls, parent) if parent else cls
            keys = config_keys(nested) if nested else []
            return (
                f"--{key}.{wrong}: no such key{_suggest(last, keys, f'--{key}.{parent}.' if parent else f'--{key}.')}"
            )
        if match := re.match(r"Subcommand '(\w+)' does not accept option '([^']+)'", text):  # a config file's key
            keys = [option.removeprefix("--") for option in options]
            return f"--config: {match[2]} is not a key of {match[1]}{_suggest(match[2], keys, '')}"
        if match := re.match(r"Expected a (.+?)\. Got value: (.*)", text):
            return f"--{key} {match[2]}: expected {_type_name(match[1])}"
        if re.match(r"Expected a dot import path string|Import path does not correspond", text):
            return _unknown_class(scope["owner"], scope["given"] or "", scope["base"])
        if match := re.match(r"File does not exist: '?([^']*)'?", text):
            return f"--{key} {match[1]}: no such file"
        if match := re.match(r"Expected a (.+)", text):
            expected.setdefault(key, []).append(_type_name(match[1]))
            continue
        return f"--{key}: {text}" if key else text
    if expected:  # only union members: the innermost key's types
        key = max(expected, key=len)
        given = next((s["given"] for s, _ in found if s["path"] == key), None)
        return f"--{key} {given}: expected {' or '.join(expected[key])}"
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def trainer_problem(trainer) -> str | None:
    """What stops the trainer part of a parsed config before anything is built: an accelerator
    this machine does not have (Lightning raises it after the envs are probed, as a traceback),
    a TensorBoardLogger without tensorboard (an optional extra)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str) and accelerator != "auto":
        known = sorted(AcceleratorRegistry.available_accelerators())
        names = ("cuda", "mps") if accelerator == "gpu" else (accelerator,)
        if not set(names) <= set(known):
            return f"--trainer.accelerator {accelerator}: not an accelerator; one of auto, gpu, {', '.join(known)}"
        if not any(AcceleratorRegistry[name]["accelerator"].is_available() for name in names):
            return f"--trainer.accelerator {accelerator}: this machine has no {accelerator} device; use cpu or auto"
    loggers = trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        path = logger.get("class_path") if hasattr(logger, "get") else None
        if str(path).endswith(".TensorBoardLogger") and not any(
            importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX")
        ):
            return "--trainer.logger TensorBoardLogger needs tensorboard: pip install -e '.[tensorboard]'"
    return None


def _empty_mappings(tree, path: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    """The key paths of a parsed YAML config whose value is an empty mapping (``modle: {}``)."""
    if isinstance(tree, dict):
        if not tree and path:
            yield path
        for key, value in tree.items():
            yield from _empty_mappings(value, (*path, str(key)))


def _children(node) -> dict | None:
    """The keys below a parsed config node: a Namespace's or a dict value's (None for a leaf)."""
    from jsonargparse import Namespace

    if isinstance(node, dict):
        return node
    if isinstance(node, Namespace):
        return {key: value for key, value in vars(node).items() if not key.startswith("__")}
    return None


def unknown_empty_mapping(configs: list, parsed, subcommand: str | None) -> str | None:
    """jsonargparse drops a key whose value is an empty mapping before it checks the key, so
    ``modle: {}`` (or ``actor_lrr: {}`` inside ``model``) in a config file would be ignored without
    a word: the first such key of ``configs`` (parsed YAML) that ``parsed`` (the parsed config)
    does not have, as the error jsonargparse gives for the same key with another value."""
    for config in configs:
        for path in _empty_mappings(config):
            node = parsed
            for depth, key in enumerate(path):
                children = _children(node)
                if children is None:  # below a value that is no mapping: jsonargparse's to check
                    break
                if key in children:
                    node = children[key]
                    continue
                keys = [k for k in children if k != "config"]
                if depth == 0:
                    return f"--config: {key} is not a key of {subcommand or 'the config'}{_suggest(key, keys, '')}"
                parent = ".".join(path[:depth])
                owner = _class(str(getattr(_children_owner(parsed, path[:depth]), "class_path", "")))
                where = f" of {class_path(owner)}" if owner is not None and path[depth - 1] == "init_args" else ""
                return f"--{parent}.{key}: no such key{where}{_suggest(key, keys, f'--{parent}.')}"
    return None


def _children_owner(parsed, path: tuple[str, ...]):
    """The node that holds ``path``'s last key (``model`` for ``model.init_args``)."""
    node = parsed
    for key in path[:-1]:
        node = (_children(node) or {}).get(key)
    return node
