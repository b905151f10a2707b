"""Loading and validating the YAML config: every error at once, each with file, line and key path.

The YAML is parsed with ruamel.yaml, which keeps the line of every key, so a pydantic error location such as
`sources.1.objects.Lead.fields` maps back to `connector.yaml:42 sources[1].objects.Lead.fields`. Source and
target entries are a discriminated union on `type`, built from the plugin registry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import Field, ValidationError, create_model, field_validator
from pydantic import Tag as _Tag  # noqa: F401 - re-exported for plugin authors

from . import config_env, safe_yaml
from .conditions import Condition
from .coverage_config import PipelineConfig, pipeline_problems
from .erasure_config import ErasureConfig, erasure_problems
from .errors import ConfigError
from .events.config import EventsConfig
from .model import NAME_PATTERN, StrictModel
from .plugin_config import SourceConfigBase, WriterConfigBase
from .registry import source_plugins, writer_plugins
from .stage_model import DEFAULT_LABEL_KEY, StageModel, merge_preset, stage_model_problems
from .suggest import did_you_mean
from .tasks.config import TASK_TARGET_TYPES, TaskConfig, task_problems
from .writers.segment_files.config import segment_file_stem

M = TypeVar("M", bound=StrictModel)
P = TypeVar("P")
# keys the loader sets on the model; never in YAML, and left out of the published JSON Schema
LOADER_KEYS = ("base_dir", "config_file")
SEGMENT_NAME_MAX = 64
# vtiger keeps a multi-select field's values joined by this; a segment name holding it would split in two
VTIGER_MULTI_SEPARATOR = "|##|"


class StateConfig(StrictModel):
    path: str = ".connector/state.sqlite"  # relative to the YAML file


class IdentityConfig(StrictModel):
    # identity keys that merge records into one person, besides each record's own id: `email` and `external_id`
    merge_on: list[Literal["email", "external_id"]] = ["email", "external_id"]
    # tie-break between sources for values of equal precedence and age (earlier wins)
    source_priority: list[str] = Field(default_factory=list)


class GuardConfig(StrictModel):
    """The mass-change guard (connector/guard.py): hold a run that would change too much at once."""

    enabled: bool = True
    # share of a segment's current members one run may remove (per segment: `max_removal_share`)
    max_segment_removal_share: float = Field(default=0.2, ge=0, le=1)
    # share of the stage labels a target holds that one run may change
    max_label_change_share: float = Field(default=0.5, ge=0, le=1)
    # fewer removals or label changes than this never hold a run (small segments move in big steps)
    min_count: int = Field(default=10, ge=1)


class SegmentConfig(StrictModel):
    # what people see in reports, campaigns and the vtiger Segments field (`Nurture newsletter`); files get a
    # safe name derived from it (segment_files), and the state keeps memberships under the name as written
    name: str = Field(min_length=1, max_length=SEGMENT_NAME_MAX)
    description: str = ""
    when: Condition
    targets: list[str] = Field(min_length=1)
    # people in a suppressed stage (qualified out, lost) are left out unless the segment asks for them
    include_suppressed: bool = False
    # `opt_out`: leave out who opted out or refused consent; `explicit`: also who never gave consent
    consent: Literal["opt_out", "explicit"] = "opt_out"
    # the mass-change guard's removal share for this segment (default: guard.max_segment_removal_share)
    max_removal_share: float | None = Field(default=None, ge=0, le=1)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(f"segment name '{value}' starts or ends with a space")
        if any(not ch.isprintable() for ch in value):
            raise ValueError(f"segment name {value!r} holds a control character (a tab, a line break)")
        if VTIGER_MULTI_SEPARATOR in value:
            raise ValueError(
                f"segment name '{value}' holds '{VTIGER_MULTI_SEPARATOR}' (vtiger's value separator)"
            )
        return value


class AppConfigBase(StrictModel):
    version: Literal[1] = 1
    base_dir: Path  # set by the loader: the directory of the YAML file
    config_file: str  # set by the loader, for messages
    state: StateConfig = Field(default_factory=StateConfig)
    stage_model: StageModel
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    # narrowed by `_app_model` to the union of the registered plugin configs, discriminated on `type`
    sources: list[SourceConfigBase] = Field(default_factory=list)
    targets: list[WriterConfigBase] = Field(default_factory=list)
    segments: list[SegmentConfig] = Field(default_factory=list)
    # the stage-transition event feed (connector/events/): off unless configured
    events: EventsConfig | None = None
    # the revenue target the open pipeline must cover (coverage.py): off unless configured
    pipeline: PipelineConfig | None = None
    # what `connector forget` does in the CRMs (erasure_config.py): leave them as they are unless configured
    erasure: ErasureConfig = Field(default_factory=ErasureConfig)
    # follow-up tasks created in the CRMs when a person's moment comes (connector/tasks/)
    tasks: list[TaskConfig] = Field(default_factory=list)

    @field_validator("stage_model", mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        return merge_preset(value)

    def state_path(self) -> Path:
        path = Path(self.state.path)
        return path if path.is_absolute() else self.base_dir / path

    def source(self, name: str) -> SourceConfigBase:
        return next(s for s in self.sources if s.name == name)


# The YAML sees AppConfigBase with `sources`/`targets` narrowed to the registered plugin configs.
AppConfig = AppConfigBase


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigErrors(ConfigError):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def _app_model(data: Mapping[str, Any] | None = None) -> type[AppConfigBase]:
    """The config model over the plugin configs: of the types `data` uses when it names only registered ones
    (a files-only config loads no CRM's config model), else of every registered type (the JSON Schema; an
    unknown type is then told apart from all the known ones)."""
    sources = tuple(p.config for p in _plugins_used(source_plugins(), data, "sources").values())
    writers = tuple(p.config for p in _plugins_used(writer_plugins(), data, "targets").values())

    def union(models: tuple[type, ...], base: type) -> Any:
        if not models:  # no entries: any item type will do
            return base
        if len(models) == 1:
            return models[0]
        return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007 - built at run time

    source_list: Any = list[union(sources, SourceConfigBase)]  # type: ignore[misc]
    target_list: Any = list[union(writers, WriterConfigBase)]  # type: ignore[misc]
    model: type[AppConfigBase] = create_model(
        "AppConfig",
        __base__=AppConfigBase,
        sources=(source_list, Field(default_factory=list)),
        targets=(target_list, Field(default_factory=list)),
    )
    return model


def _plugins_used(plugins: Mapping[str, P], data: Mapping[str, Any] | None, section: str) -> dict[str, P]:
    """The plugins of `section` whose types `data` names, or all of them (no data, or a type not theirs)."""
    entries = data.get(section) if data is not None else None
    if data is not None and entries is None:
        return {}
    if not isinstance(entries, list):
        return dict(plugins)
    kinds = [e.get("type") if isinstance(e, dict) else None for e in entries]
    if not all(isinstance(k, str) and k in plugins for k in kinds):
        return dict(plugins)
    return {kind: plugin for kind, plugin in plugins.items() if kind in kinds}


def _line_of(root: Any, loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """Walk the YAML tree along a pydantic error location: (1-based line, readable key path)."""
    node = root
    line: int | None = None
    parts: list[str] = []
    for element in loc:
        if isinstance(node, dict) and element in node:
            # a node built by the loader has positions; one merged in from a preset has none (keep the parent's)
            with contextlib.suppress(AttributeError, KeyError, TypeError):
                line = node.lc.key(element)[0] + 1  # type: ignore[attr-defined]
            parts.append(str(element) if not parts else f".{element}")
            node = node[element]
        elif isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            with contextlib.suppress(AttributeError, KeyError, TypeError):
                line = node.lc.item(element)[0] + 1  # type: ignore[attr-defined]
            parts.append(f"[{element}]")
            node = node[element]
        elif isinstance(element, str) and element not in ("field", "all", "any", "not", "function-after"):
            # an unknown key (extra="forbid") or a missing one: name it, the line stays the parent's
            if not element.startswith(("tagged-union", "function-")) and "[" not in element:
                parts.append(str(element) if not parts else f".{element}")
    return line, "".join(parts)


def _fix_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop discriminator tags pydantic inserts into locations (`sources.0.salesforce.objects`)."""
    out: list[Any] = []
    node = data
    tag_seen = False
    for element in loc:
        if isinstance(node, dict):
            if not tag_seen and _at_condition(out) and element == _condition_key(node):
                # the condition union's tag, which is also one of the node's keys (`field`, `all`, `not`):
                # the first occurrence is the tag, the next one the key
                tag_seen = True
                continue
            if element in node:
                out.append(element)
                node = node[element]
                tag_seen = False
            elif isinstance(element, str) and (element in ("field", "all", "any", "not") or "[" in element):
                continue
            elif isinstance(element, str) and node.get("type") == element:
                continue  # the discriminator tag of a plugin union
            else:
                out.append(element)
                node = None
        elif isinstance(node, list) and isinstance(element, int):
            out.append(element)
            node = node[element] if element < len(node) else None
        else:
            out.append(element)
    return tuple(out)


def _at_condition(out: list[Any]) -> bool:
    """The location so far ends at a condition: `when`, `not`, or an item of an `all` / `any` list."""
    if not out:
        return False
    if out[-1] in ("when", "not"):
        return True
    return isinstance(out[-1], int) and len(out) > 1 and out[-2] in ("all", "any")


def _condition_key(node: dict[str, Any]) -> str | None:
    return next((tag for tag in ("all", "any", "not", "field") if tag in node), None)


def _message(err: Any, loc: tuple[Any, ...] = (), data: Any = None) -> str:
    kind = err.get("type")
    msg = str(err.get("msg", "invalid"))
    if kind == "extra_forbidden":
        from .config_schema import keys_at  # the schema module builds on this one

        known = keys_at(loc[:-1], data) if loc else set()
        return "unknown key" + (did_you_mean(str(loc[-1]), known) if known else "")
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        return msg + did_you_mean(str(ctx.get("tag", "")), expected)
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def parse_yaml(text: str, file: str) -> Any:
    try:
        return safe_yaml.load(text)
    except safe_yaml.YamlProblem as exc:
        raise ConfigErrors([ConfigIssue(file, exc.line, "", exc.message)]) from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AppConfigBase:
    """Read, validate and cross-check the config; raise `ConfigErrors` listing every problem.

    `${VAR}` in values comes from `environ` (default: the process environment)."""
    path = Path(path)
    shown = str(path)
    try:
        text = safe_yaml.decode(path.read_bytes())
    except OSError as exc:
        raise ConfigErrors([ConfigIssue(shown, None, "", f"cannot read: {exc.strerror}")]) from None
    except safe_yaml.YamlProblem as exc:
        raise ConfigErrors([ConfigIssue(shown, exc.line, "", exc.message)]) from None
    return load_config_text(text, shown, base_dir=path.resolve().parent, environ=environ)


def load_config_text(
    text: str, file: str, *, base_dir: Path, environ: Mapping[str, str] | None = None
) -> AppConfigBase:
    root = parse_yaml(text, file)
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise ConfigErrors([ConfigIssue(file, 1, "", "the config must be a mapping at the top level")])
    issues: list[ConfigIssue] = []
    for reserved in LOADER_KEYS:
        if reserved in root:
            line, _ = _line_of(root, (reserved,))
            issues.append(ConfigIssue(file, line, reserved, "set by connector, not in YAML"))
    unresolved = config_env.substitute_tree(root, os.environ if environ is None else environ)
    for loc, message in unresolved:
        line, key_path = _line_of(root, loc)
        issues.append(ConfigIssue(file, line, key_path, message))
    # a value whose variable is missing is not known yet: its own validation error would only repeat the problem
    unknown_values = {_line_of(root, loc) for loc, _ in unresolved}
    data = _plain(root)
    data["base_dir"] = base_dir
    data["config_file"] = file
    model = _app_model(data)
    config: AppConfigBase | None = None
    try:
        # base_dir: plugin configs resolve their paths (ca_bundle) against the config file's folder
        config = model.model_validate(data, context={"defer_stage_checks": True, "base_dir": base_dir})
    except ValidationError as exc:
        for err in exc.errors():
            loc = _fix_loc(tuple(err["loc"]), data)
            line, key_path = _line_of(root, loc)
            if (line, key_path) not in unknown_values:
                issues.append(ConfigIssue(file, line, key_path, _message(err, loc, data)))
    issues.extend(_cross_check(data, root, file))
    issues.extend(_plugin_cross_checks(data, root, file, base_dir))
    if issues or config is None:
        raise ConfigErrors(_sorted(_dedupe(issues)))
    return config


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return list(dict.fromkeys(issues))


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """In file order, as an admin reads the file."""
    return sorted(issues, key=lambda i: i.line or 0)


def _plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts/lists (pydantic wants plain types)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _cross_check(data: dict[str, Any], root: Any, file: str) -> list[ConfigIssue]:
    """References between sections: names unique, targets and sources named where they are used.

    Works on the plain YAML data, not the validated models, so these problems are reported together with
    the schema errors of the same file (an admin fixes everything in one round).
    """
    issues: list[ConfigIssue] = []

    def issue(loc: tuple[Any, ...], message: str) -> None:
        line, key_path = _line_of(root, loc)
        issues.append(ConfigIssue(file, line, key_path, message))

    def entries(section: str) -> list[dict[str, Any]]:
        items = data.get(section)
        return [i if isinstance(i, dict) else {} for i in items] if isinstance(items, list) else []

    sources, targets, segments = entries("sources"), entries("targets"), entries("segments")
    source_names = [s.get("name") for s in sources]
    target_names = [t.get("name") for t in targets]
    for section, names in (("sources", source_names), ("targets", target_names)):
        for i, name in enumerate(names):
            if not isinstance(name, str):
                continue  # a schema error already names it
            if not NAME_PATTERN.match(name):
                issue((section, i, "name"), f"'{name}' must match {NAME_PATTERN.pattern}")
            if names.index(name) != i:
                issue((section, i, "name"), f"name '{name}' is used twice")
    clash = set(source_names) & set(target_names) - {None}
    for i, name in enumerate(target_names):
        if name in clash:
            issue(("targets", i, "name"), f"'{name}' is also a source name; use distinct names")
    known_sources = ", ".join(str(n) for n in source_names if isinstance(n, str))
    named_sources = [n for n in source_names if isinstance(n, str)]
    named_targets = [n for n in target_names if isinstance(n, str)]
    for i, target in enumerate(targets):
        ref = target.get("source")
        if isinstance(ref, str) and ref not in source_names:
            hint = did_you_mean(ref, named_sources) or f" (sources: {known_sources})"
            issue(("targets", i, "source"), f"no source named '{ref}'{hint}")
    seg_names = [s.get("name") for s in segments]
    file_targets = {str(t.get("name")) for t in targets if t.get("type") == "segment_files"}
    # (segment_files target, file name folded as a case-insensitive file system sees it) -> first segment
    file_names: dict[tuple[str, str], str] = {}
    for i, seg in enumerate(segments):
        name, seg_targets = seg.get("name"), seg.get("targets")
        seg_targets = seg_targets if isinstance(seg_targets, list) else []
        if isinstance(name, str) and file_targets & set(map(str, seg_targets)):
            try:
                stem = segment_file_stem(name)
            except ConfigError as exc:
                issue(("segments", i, "name"), str(exc))
            else:
                for file_target in sorted(file_targets & set(map(str, seg_targets))):
                    first = file_names.setdefault((file_target, stem.casefold()), name)
                    if first != name:
                        issue(
                            ("segments", i, "name"),
                            f"segments '{first}' and '{name}' would both be written to {stem}.csv in "
                            f"target '{file_target}': rename one",
                        )
        if isinstance(name, str) and seg_names.index(name) != i:
            issue(("segments", i, "name"), f"segment name '{name}' is used twice")
        for j, target in enumerate(seg_targets):
            if target not in target_names:
                hint = did_you_mean(str(target), named_targets)
                issue(("segments", i, "targets", j), f"no target named '{target}'{hint}")

    model = _stage_model_or_none(data.get("stage_model"))
    if model is not None:
        for loc, message in stage_model_problems(model):
            issue(("stage_model", *loc), message)
    for loc, label_target in _label_targets(data.get("stage_model")):
        if label_target not in target_names:
            hint = did_you_mean(label_target, named_targets)
            issue(("stage_model", *loc), f"no target named '{label_target}'{hint}")
    stage_names = _stage_names(data.get("stage_model"), model)
    if stage_names:
        for i, seg in enumerate(segments):
            for cond_stage in _stages_named(seg.get("when")):
                if cond_stage not in stage_names:
                    hint = did_you_mean(cond_stage, stage_names) or f" (stages: {', '.join(stage_names)})"
                    issue(("segments", i, "when"), f"unknown stage '{cond_stage}'{hint}")
    for loc, message in pipeline_problems(data.get("pipeline"), stage_names):
        issue(("pipeline", *loc), message)
    for loc, message in erasure_problems(data.get("erasure"), named_targets):
        issue(("erasure", *loc), message)
    task_targets = {
        str(t["name"]): str(t.get("type"))
        for t in targets
        if t.get("type") in TASK_TARGET_TYPES and isinstance(t.get("name"), str)
    }
    for loc, message in task_problems(data.get("tasks"), task_targets, named_targets, stage_names):
        issue(("tasks", *loc), message)
    identity_section = data.get("identity")
    priority = identity_section.get("source_priority") if isinstance(identity_section, dict) else None
    for i, name in enumerate(priority if isinstance(priority, list) else []):
        if name not in source_names:
            hint = did_you_mean(str(name), named_sources)
            issue(("identity", "source_priority", i), f"no source named '{name}'{hint}")
    return issues


def _label_targets(raw: Any) -> list[tuple[tuple[Any, ...], str]]:
    """(location below stage_model, target name) of every per-target label the admin wrote: in `stages[i]
    .labels` and in the `labels` overlay. From the raw YAML, so each is found even when the stage model has
    other errors, and at the line where it was written (not on a preset's stage)."""
    if not isinstance(raw, dict):
        return []
    found: list[tuple[tuple[Any, ...], str]] = []
    stages = raw.get("stages")
    for i, stage in enumerate(stages if isinstance(stages, list) else []):
        labels = stage.get("labels") if isinstance(stage, dict) else None
        for target in labels if isinstance(labels, dict) else {}:
            found.append((("stages", i, "labels", target), str(target)))
    overlay = raw.get("labels")
    for stage_name, value in overlay.items() if isinstance(overlay, dict) else ():
        for target in value if isinstance(value, dict) else {}:
            if target != DEFAULT_LABEL_KEY:
                found.append((("labels", stage_name, target), str(target)))
    return found


def _stage_names(raw: Any, model: StageModel | None) -> list[str]:
    """The stage names segments may test: the model's, or the names its stages list gives when the model has
    errors of its own (its stage names are still worth checking in the same round)."""
    if model is not None:
        return [st.name for st in model.stages]
    with contextlib.suppress(ValueError, TypeError):
        raw = merge_preset(raw)
    stages = raw.get("stages") if isinstance(raw, dict) else None
    names = [s.get("name") for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []
    return [n for n in names if isinstance(n, str)]


def _plugin_cross_checks(data: dict[str, Any], root: Any, file: str, base_dir: Path) -> list[ConfigIssue]:
    """Each target's checks against the source it writes back to (`WriterConfigBase.cross_check`), for every
    entry that validates on its own: a broken entry elsewhere in the file does not hide these."""
    source_models = {kind: p.config for kind, p in _plugins_used(source_plugins(), data, "sources").items()}
    writer_models = {kind: p.config for kind, p in _plugins_used(writer_plugins(), data, "targets").items()}
    sources = {cfg.name: cfg for cfg in _valid_entries(data, "sources", source_models, base_dir).values()}
    issues: list[ConfigIssue] = []
    for i, target in _valid_entries(data, "targets", writer_models, base_dir).items():
        for loc, message in target.cross_check(sources):
            line, key_path = _line_of(root, ("targets", i, *loc))
            issues.append(ConfigIssue(file, line, key_path, message))
    return issues


def _valid_entries(
    data: dict[str, Any], section: str, models: Mapping[str, type[M]], base_dir: Path
) -> dict[int, M]:
    """Index -> validated config model of the entries of `section` that validate alone."""
    items = data.get(section)
    found: dict[int, M] = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        kind = item.get("type") if isinstance(item, dict) else None
        model = models.get(kind) if isinstance(kind, str) else None
        if model is None:
            continue
        try:
            found[i] = model.model_validate(item, context={"base_dir": base_dir})
        except ValidationError:
            continue  # its own errors come from the schema pass
    return found


def _stage_model_or_none(raw: Any) -> StageModel | None:
    """The stage model if it validates on its own (its own errors come from the schema pass)."""
    try:
        return StageModel.model_validate(merge_preset(raw), context={"defer_stage_checks": True})
    except (ValidationError, ValueError, TypeError):
        return None


def _stages_named(cond: Any) -> list[str]:
    """Stage names a raw condition compares `stage` / `previous_stage` with."""
    if not isinstance(cond, dict):
        return []
    for combinator in ("all", "any"):
        if isinstance(cond.get(combinator), list):
            return [s for c in cond[combinator] for s in _stages_named(c)]
    if "not" in cond:
        return _stages_named(cond["not"])
    if cond.get("field") in ("stage", "previous_stage"):
        for op in ("eq", "ne"):
            if isinstance(cond.get(op), str):
                return [cond[op]]
        for op in ("in", "not_in"):
            if isinstance(cond.get(op), list):
                return [str(v) for v in cond[op]]
    return []
