"""The subject and description of a task: a Jinja2 template over the person's fields, sandboxed.

The sandbox keeps a template from reaching Python internals (a config file is not code); StrictUndefined makes a
misspelt field name an error, found when the config is validated: every template is rendered once then with
sample values of every schema field. Jinja is imported here only, so a config without tasks never loads it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from ..schema import PERSON_FIELDS, FieldType

if TYPE_CHECKING:
    from jinja2 import Template

# names a template may use besides the person's schema fields
EXTRA_NAMES = ("extra", "stage", "label", "task", "due_date", "occurrence", "as_of")
SAMPLE: dict[FieldType, Any] = {
    FieldType.STR: "text",
    FieldType.BOOL: False,
    FieldType.INT: 0,
    FieldType.FLOAT: 0.0,
    FieldType.DATE: dt.date(2000, 1, 1),
}


def _finalize(value: Any) -> Any:
    # an absent value prints as nothing, not "None"
    return "" if value is None else value


@cache
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # plain text into a CRM field: no HTML autoescaping (the CRM shows the text as text)
    return SandboxedEnvironment(undefined=StrictUndefined, finalize=_finalize, autoescape=False)


@cache
def compile_template(text: str) -> Template:
    """The compiled template; ValueError with Jinja's reason (a syntax error)."""
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template error: {exc.message} (template line {exc.lineno})") from None


def check_template(text: str) -> str:
    """Compile and render with a sample of every field: a syntax error or an unknown name is a ValueError."""
    from jinja2 import TemplateError, UndefinedError

    template = compile_template(text)
    sample: dict[str, Any] = {name: SAMPLE[f.type] for name, f in PERSON_FIELDS.items()}
    sample.update(
        extra=defaultdict(str),
        stage="stage",
        label="Label",
        task="task",
        due_date=dt.date(2000, 1, 2),
        occurrence="occurrence",
        as_of=dt.date(2000, 1, 1),
    )
    try:
        template.render(sample)
    except UndefinedError as exc:
        known = sorted([*PERSON_FIELDS, *EXTRA_NAMES])
        from ..suggest import did_you_mean

        name = str(exc.message or "").split("'")[1] if "'" in str(exc.message or "") else ""
        hint = did_you_mean(name, known) if name else ""
        raise ValueError(
            f"template: {exc.message}{hint} (names: the person's schema fields, {', '.join(EXTRA_NAMES)})"
        ) from None
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"template: {exc}") from None
    return text


def render(text: str, values: Mapping[str, Any]) -> str:
    """The template rendered with `values`; ValueError when the person's values do not fit it."""
    from jinja2 import TemplateError

    try:
        return str(compile_template(text).render(dict(values))).strip()
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"template could not be rendered: {exc}") from None
