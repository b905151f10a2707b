"""The runtime package carries no sandbox: not in the wheel the Docker image installs, not in its imports.

The loopback sandboxes and the demo live in their own distribution (sandboxes/connector_sandboxes), with fixed
test credentials that must never reach a production image. `connector demo` and `connector sandbox` load them
on demand and say plainly when they are not installed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from connector_sandboxes.salesforce import Credentials

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "connector"
SANDBOX_PACKAGE = "connector_sandboxes"


def _dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per FROM stage."""
    stages: list[list[str]] = []
    logical = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        logical += line.removesuffix("\\").strip() + " "
        if line.endswith("\\"):
            continue
        if logical.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(logical.strip())
        logical = ""
    return stages


def _build_context(stage: list[str], into: Path) -> None:
    """Copy what the build stage's COPY lines take from the repository, so the wheel is built from that."""
    copies = [line.split()[1:] for line in stage if line.upper().startswith("COPY ")]
    assert copies, "the build stage copies nothing from the repository"
    for *sources, dest in copies:
        assert not any(s.startswith("--") for s in sources), (
            f"unexpected COPY option in the build stage: {sources}"
        )
        for source in sources:
            origin = ROOT / source
            target = into / dest / source if dest.endswith("/") else into / dest
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def test_the_wheel_the_docker_image_installs_holds_no_sandbox_and_no_test_credentials(tmp_path: Path) -> None:
    build, final = _dockerfile_stages()[0], _dockerfile_stages()[-1]
    # the image itself takes nothing from the repository: only the wheels built in the first stage
    assert all("--from=" in line for line in final if line.upper().startswith("COPY ")), final
    context = tmp_path / "context"
    _build_context(build, context)

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        cwd=context,
        check=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "wheels").glob("connector-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        texts = {name: archive.read(name).decode("utf-8", "replace") for name in names}

    assert {name.split("/")[0] for name in names} == {
        "connector",
        wheel.name.split("-")[0] + "-0.1.0.dist-info",
    }
    assert "connector/cli.py" in names, "the wheel was built, but not from connector/"
    assert not [n for n in names if "sandbox" in n or "/demo" in n]
    assert texts[next(n for n in names if n.endswith("top_level.txt"))].split() == ["connector"]
    credentials = [v for v in dataclasses.astuple(Credentials()) if isinstance(v, str)]
    assert credentials
    leaked = {(name, secret) for name, text in texts.items() for secret in credentials if secret in text}
    assert not leaked


def _imports_of_the_sandboxes(path: Path) -> list[tuple[int, bool]]:
    """(line, inside a function) of every import in `path` that reaches the sandbox package or the old paths."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(inner) for inner in ast.walk(node) if inner is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # `from . import demo` names the module in the alias, `from .demo import x` in node.module
            modules = [".".join(filter(None, (node.module, alias.name))) for alias in node.names]
        else:
            continue
        if any(_reaches_the_sandboxes(m) for m in modules):
            found.append((node.lineno, id(node) in in_function))
    return found


def _reaches_the_sandboxes(module: str) -> bool:
    parts = module.split(".")
    if parts[0] == SANDBOX_PACKAGE:
        return True
    # the old homes inside the package, absolute (connector.sandboxes) or relative (.sandboxes, ..demo)
    inner = parts[1:] if parts[0] == "connector" else parts
    return bool(inner) and inner[0] in ("sandboxes", "demo")


def test_no_runtime_module_imports_the_sandboxes_except_the_two_commands_on_demand() -> None:
    imports = {
        str(path.relative_to(ROOT)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := _imports_of_the_sandboxes(path))
    }
    assert set(imports) <= {"connector/cli.py"}, imports
    assert all(inside for _, inside in imports.get("connector/cli.py", [])), imports


HIDDEN = """
import importlib, json, pkgutil, sys
sys.modules["connector_sandboxes"] = None  # as if not installed: importing it raises ModuleNotFoundError
import connector
modules = [m.name for m in pkgutil.walk_packages(connector.__path__, "connector.")]
for name in modules:
    importlib.import_module(name)
from click.testing import CliRunner
from connector.cli import cli
runner = CliRunner()
out = {"modules": modules}
# an impossible port: a sandbox command that did start a server fails at once instead of serving until Ctrl-C
for args in (["validate", "-c", "config/connector.yaml"], ["demo", "--dir", sys.argv[1]], ["sandbox", "vtiger", "--port", "-1"]):
    result = runner.invoke(cli, args)
    out[args[0]] = {"exit": result.exit_code, "output": result.output, "error": repr(result.exception)}
print(json.dumps(out))
"""


def test_connector_works_without_the_sandbox_package_and_its_two_commands_say_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HIDDEN, str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "connector.cli" in out["modules"] and "connector.pipeline" in out["modules"]
    assert out["validate"]["exit"] == 0, out["validate"]
    for command in ("demo", "sandbox"):
        assert out[command]["exit"] == 2, out[command]
        assert "sandboxes and the demo are not installed" in out[command]["output"], out[command]
        assert "make demo" in out[command]["output"]
    assert not (tmp_path / "demo").exists()
