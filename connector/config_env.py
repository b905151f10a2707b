"""`${VAR}` in config values: one file serves dev and prod, each environment filling in its own URLs and paths.

`${VAR}` takes the variable's value and `${VAR:-default}` a default when it is unset or empty, anywhere inside
a string value (`url: https://${CRM_HOST}`); `$${` writes a literal `${`. Keys are never substituted. An unset
variable is a config error with the file and line of the value that needs it, reported with every other
problem of the file.

Secrets are not read this way. connector reads credentials from the environment itself (`<env_prefix>PASSWORD`
and the like): through `${...}` a secret would become an ordinary config value, which messages about that value
quote. So a variable whose name looks like a secret (PASSWORD, SECRET, TOKEN, ACCESS_KEY, ...) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# `$${` (an escaped `${`) or `${...}`; an opening `${` never closed is reported, not left as text
REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)(\}|$)")
VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "ACCESS_KEY", "API_KEY", "PRIVATE_KEY", "SESSION")

Location = tuple[str | int, ...]


def looks_secret(variable: str) -> bool:
    upper = variable.upper()
    return any(word in upper for word in SECRET_WORDS)


def substitute(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`value` with its references replaced, and the problems found (each a readable sentence)."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        inner, closed = match.group(1), match.group(2)
        if not closed:
            problems.append(f"'${{{inner}' is not closed with '}}'")
            return match.group(0)
        parsed = VARIABLE.match(inner)
        if parsed is None:
            problems.append(f"'${{{inner}}}' is not ${{VAR}} or ${{VAR:-default}} (letters, digits and _)")
            return match.group(0)
        name, default = parsed.group(1), parsed.group(2)
        if looks_secret(name):
            problems.append(
                f"'${{{name}}}' looks like a secret: secrets are not placed in the config, connector reads "
                "them from the environment itself (see env_prefix)"
            )
            return match.group(0)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        state = "empty" if found == "" else "not set"
        problems.append(f"environment variable {name} is {state} (or write ${{{name}:-default}})")
        return match.group(0)

    if "$" not in value:
        return value, problems
    return REFERENCE.sub(replace, value), problems


def substitute_tree(root: Any, environ: Mapping[str, str]) -> list[tuple[Location, str]]:
    """Substitute every string value of the parsed YAML in place (the tree keeps its line numbers); return
    each problem with the key path of the value it is in."""
    problems: list[tuple[Location, str]] = []
    stack: list[tuple[Any, Location]] = [(root, ())]
    seen: set[int] = set()  # an alias shares its anchor's node: substitute it once
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        items: list[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, value in items:
            if isinstance(value, str):
                new, found = substitute(value, environ)
                problems.extend(((*loc, key), message) for message in found)
                if new != value:
                    node[key] = new
            else:
                stack.append((value, (*loc, key)))
    return problems
