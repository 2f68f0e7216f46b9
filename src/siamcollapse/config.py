"""Experiment configuration: validation against the JSON schema and defaults.

The schema (``config.schema.yaml`` next to this module) is the single description of every
key: its type, allowed values and default. Validation fills in defaults and turns the first
violation into one message that names the dotted key, before any job runs. Snakemake (at DAG
build time) and every stage command (at run time) load a config through the same functions.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path
from typing import Any

import yaml

from .errors import UserInputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's loader where PyYAML has it (the schema is read by every stage and Snakemake
    start; the pure-Python loader takes ten times as long), refusing a key given twice in one
    mapping: YAML would keep the last silently, so a run group defined twice would vanish."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: keys written beside it override the merged ones, by design
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping (line {mark.line + 1})", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; errors name the file (and, for YAML errors, the line)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        raise UserInputError(f"{path} is empty: a config file holds a mapping of config keys "
                             "(to run the defaults, give config.yaml)")
    if not isinstance(data, dict):
        raise UserInputError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def _resolve(subschema: dict, root: dict) -> dict:
    ref = subschema.get("$ref")
    if ref is None:
        return subschema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return {**node, **{k: v for k, v in subschema.items() if k != "$ref"}}


def fill_defaults(instance: dict, schema: dict, root: dict | None = None) -> dict:
    """Write each declared property's default into ``instance``, recursively.

    Only named ``properties`` are filled, never entries matched by ``additionalProperties``:
    a run group's partial ``model``/``pretrain`` overrides must stay partial, so the top-level
    values they do not override still apply. Nor are defaults filled inside a node marked
    ``x-overrides`` (a method's augmentation overrides), for the same reason; but where such a
    node has a default of its own (MoCo-v3's and BYOL's augmentation), a partial value merges
    into it: an override changes only the keys it names.
    """
    root = root if root is not None else schema
    for name, subschema in schema.get("properties", {}).items():
        subschema = _resolve(subschema, root)
        if name not in instance and "default" in subschema:
            instance[name] = copy.deepcopy(subschema["default"])
        elif subschema.get("x-overrides") and isinstance(subschema.get("default"), dict) and isinstance(instance[name], dict):
            instance[name] = deep_merge(subschema["default"], instance[name])
        if isinstance(instance.get(name), dict) and "properties" in subschema and not subschema.get("x-overrides"):
            fill_defaults(instance[name], subschema, root)
    return instance


def _key_of(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
        return ".".join(parts) or "(top level)"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        parts.append(missing)
    return ".".join(parts) or "(top level)"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key (allowed here: {allowed})"
    if error.validator == "required":
        return "required key is missing"
    return error.message


def _types(subschema: dict) -> set[str]:
    kind = subschema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def coerce_strings(instance: dict, schema: dict, root: dict | None = None) -> dict:
    """Parse strings as YAML where the schema wants a number, boolean, list or null, in place.

    Snakemake's ``--config 'pretrain={epochs: 2}'`` delivers every nested value as a string.
    """
    root = root if root is not None else schema
    for name, value in list(instance.items()):
        subschema = _resolve(schema.get("properties", {}).get(name) or schema.get("additionalProperties") or {}, root)
        if isinstance(value, str) and _types(subschema) and "string" not in _types(subschema):
            instance[name] = _parse_scalar(value)  # unparsable: left as is, validation names the key
        elif isinstance(value, dict):
            coerce_strings(value, subschema, root)
        elif isinstance(value, list) and "string" not in _types(subschema.get("items", {})):
            instance[name] = [_parse_scalar(item) for item in value]
    return instance


def _parse_scalar(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str):  # YAML 1.1 reads 1e-4 and 1.0e30 as strings; a number key means a number
        try:
            number = float(parsed)
        except ValueError:
            return parsed
        return number if math.isfinite(number) else parsed  # nan and inf: left for validation to refuse
    return parsed


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH, source: str = "config") -> dict:
    """Validate ``config`` in place against the schema, filling defaults; return it.

    Raises UserInputError naming the first offending dotted key.
    """
    from jsonschema import Draft202012Validator

    schema = load_yaml(schema_path)
    coerce_strings(config, schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        first = errors[0]
        raise UserInputError(f"{source}: key '{_key_of(first)}': {_describe(first)}")
    return fill_defaults(config, schema)


def schema_defaults(schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The configuration made of defaults alone (for documentation and tests)."""
    return fill_defaults({}, load_yaml(schema_path))


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively by ``override`` (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def nest_dotted_keys(config: dict[str, Any]) -> dict[str, Any]:
    """Turn top-level ``{"a.b": v}`` (from ``--config a.b=v``) into ``{"a": {"b": v}}``, in place."""
    for dotted in [k for k in config if isinstance(k, str) and "." in k]:
        value = config.pop(dotted)
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UserInputError(f"config: key '{dotted}': '{part}' is not a mapping")
            node = child
        node[leaf] = value
    return config


def load_experiment(configfiles: list[str | Path], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The validated config of an experiment: files merged in order, then ``overrides`` on top.

    This is what Snakemake builds from ``--configfile ... --config ...``; stage commands get the
    same files and overrides, so both see one configuration.
    """
    if not configfiles:
        raise UserInputError("no config file given")
    config: dict[str, Any] = {}
    for path in configfiles:
        config = deep_merge(config, load_yaml(path))
    config = deep_merge(config, nest_dotted_keys(copy.deepcopy(overrides or {})))
    source = str(configfiles[-1]) if len(configfiles) == 1 else "config"
    return validate_config(nest_dotted_keys(config), source=source)


def get_dotted(config: dict[str, Any], key: str) -> Any:
    """``get_dotted(c, "a.b")`` is ``c["a"]["b"]``; KeyError if any part is missing."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def has_dotted(config: dict[str, Any], key: str) -> bool:
    try:
        get_dotted(config, key)
    except KeyError:
        return False
    return True


class DeclaredKeys(dict):
    """A config (or one of its sections) that holds only the keys a stage declared: reading any
    other key is an error naming it, so a stage cannot depend on a key its params do not record."""

    def __init__(self, values: dict[str, Any], where: str, stage: str) -> None:
        super().__init__(values)
        self.where, self.stage = where, stage

    def __missing__(self, key: str) -> Any:
        raise KeyError(f"stage {self.stage!r} read config key '{self.where}{key}', which it does not declare "
                       "(plan.STAGE_CONFIG_KEYS): declare it, so that Snakemake and DVC rerun the stage when it changes")


def only_keys(config: dict[str, Any], keys: list[str], stage: str) -> DeclaredKeys:
    """The part of ``config`` under the dotted ``keys`` (plus ``resources``, which the command line reads)."""
    view = DeclaredKeys({"resources": config["resources"]}, "", stage)
    for dotted in keys:
        *parents, leaf = dotted.split(".")
        node, source, where = view, config, ""
        for part in parents:
            where += f"{part}."
            source = source[part]
            node = node.setdefault(part, DeclaredKeys({}, where, stage))
        node[leaf] = copy.deepcopy(source[leaf])
    return view


def steps_per_epoch(pretrain: dict[str, Any], num_train: int) -> int:
    """Steps in one epoch: fixed by the *full* training set, whatever the subset (compute-matched)."""
    if pretrain.get("steps_per_epoch"):
        return int(pretrain["steps_per_epoch"])
    return max(1, math.ceil(num_train / pretrain["batch_size"]))


def json_object(text: str) -> dict:
    """An argparse type: config overrides given as a JSON object on the command line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value
