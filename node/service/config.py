"""A hospital node's configuration: one TOML file, read with :mod:`tomllib`, checked at start.

Every problem raises :class:`ConfigError` with one line naming the file, the key and the
problem (``node.toml: [privacy].epsilon: must be > 0, got -1``). Relative paths are resolved
against the config file's folder. ``medmesh node init`` writes a commented template
(:func:`template`).

This module reads a file into the one schema, :mod:`node.service.configschema` (the sections,
their keys, types and defaults, each written once; re-exported here), and runs the checks
across keys of :mod:`node.service.configcheck`. The library settings
(:class:`node.learning.privacy.DPConfig`, :class:`node.learning.training.TrainConfig`), the
round pipeline's :class:`node.peer.pipeline.PeerSettings` (``PeerSettings.from_config``),
``medmesh demo``'s :class:`node.sim.demo.DemoConfig` and the incentive simulator's scenario take
their defaults from these sections, so a key left out resolves to the same value wherever it is
read.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from node.service.configcheck import bootstrap_problem, check_config
from node.service.configschema import (
    ACCOUNTANTS,
    DATA_SOURCES,
    PROTECTION_MODES,
    REQUIRED_SECTIONS,
    SCALINGS,
    SECTIONS,
    WHEN_DONE,
    AggregationSection,
    ChainSection,
    ConfigError,
    DataSection,
    GossipSection,
    MonitoringSection,
    NodeConfig,
    NodeSection,
    PrivacySection,
    RoundsSection,
    TrainingSection,
)

__all__ = [
    "ConfigError",
    "NodeConfig",
    "NodeSection",
    "ChainSection",
    "DataSection",
    "TrainingSection",
    "PrivacySection",
    "AggregationSection",
    "RoundsSection",
    "GossipSection",
    "MonitoringSection",
    "ACCOUNTANTS",
    "PROTECTION_MODES",
    "DATA_SOURCES",
    "SCALINGS",
    "WHEN_DONE",
    "bootstrap_problem",
    "key_comments",
    "load_config",
    "parse_config",
    "template",
]


def load_config(path: str | Path) -> NodeConfig:
    """Read and check ``path``; raise :class:`ConfigError` (one line) on the first problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> NodeConfig:
    where = path.name
    for name in raw:
        if name not in SECTIONS:
            raise ConfigError(
                f"{where}: [{name}]: unknown section; expected one of {', '.join(SECTIONS)}"
            )
    for name in REQUIRED_SECTIONS:
        if name not in raw:
            raise ConfigError(f"{where}: [{name}]: missing section")
    base = path.parent
    sections = {
        name: _section(where, name, cls, raw.get(name, {}), base) for name, cls in SECTIONS.items()
    }
    cfg = NodeConfig(path=path, **sections)
    check_config(where, cfg)
    return cfg


def _section(where: str, name: str, cls: type, values: Any, base: Path) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{name}]: must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{where}: [{name}].{key}: unknown key; expected one of {', '.join(known)}"
            )
        annotation = known[key].type
        if not isinstance(annotation, str):  # this module's annotations are postponed: text
            raise TypeError(f"[{name}].{key}: field type {annotation!r} is not annotation text")
        kwargs[key] = _typed(f"{where}: [{name}].{key}", annotation, value, base)
    for key, f in known.items():
        if key not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}: [{name}].{key}: missing (required)")
    return cls(**kwargs)


def _typed(what: str, annotation: str, value: Any, base: Path) -> Any:
    """``value`` converted to the field's annotated type, or a ConfigError naming ``what``."""
    kind = annotation.replace(" | None", "")
    if kind == "Path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{what}: must be a non-empty path string, got {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{what}: must be a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{what}: must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what}: must be an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{what}: must be a number, got {value!r}")
        return float(value)
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{what}: must be a list of strings, got {value!r}")
        return tuple(value)
    raise AssertionError(f"no converter for {annotation}")  # a field type this module forgot


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def key_comments(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in its dataclass's source: the template's key notes."""
    import inspect

    notes = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+(?:=[^#]*)?#\s*(.+)$", line)
        if match:
            notes[match[1]] = match[2].strip()
    return notes


def template(values: dict[str, dict[str, Any]]) -> str:
    """A config file: every section with its keys, ``values`` overriding the defaults, each key
    with its one-line note; an optional key without a value is written commented out."""
    lines = [
        "# medmesh hospital node (`medmesh node run --config THIS_FILE`); see README,",
        "# 'Running a hospital node', for every key. Relative paths are relative to this file.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        given = values.get(name, {})
        notes = key_comments(cls)
        for f in fields(cls):
            note = f"  # {notes[f.name]}" if f.name in notes else ""
            if f.name in given and given[f.name] is not None:
                lines.append(f"{f.name} = {_toml_value(given[f.name])}{note}")
            elif f.default is not MISSING and f.default is not None:
                lines.append(f"{f.name} = {_toml_value(f.default)}{note}")
            else:
                lines.append(f"# {f.name} = ...{note}")
    return "\n".join(lines) + "\n"
