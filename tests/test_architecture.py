"""The house keeps its shape: stages import only the stages below them, modules stay small,
and the package installs as a package (its clinical content inside it)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import SELECT, fixture
from tests.serving import free_port

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cds_service"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_stages_import_only_the_stages_below_them() -> None:
    """The contract of .importlinter (the pipeline's layers) holds. In a process of its own:
    import-linter reconfigures logging, which would blind the log assertions of later tests."""
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / ".importlinter")]
    result = subprocess.run(lint, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_or_function_outgrows_its_job() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(ROOT)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []


def _imported(path: Path, package: str) -> set[str]:
    """The modules a file imports, by their full names: ``from cds_service.rules import x`` (or
    ``from . import x``) counts ``cds_service.rules.x`` too, as it may name a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_rule_imports_another_rule() -> None:
    """A rule module (one ``RULE_MODULES`` lists) imports helpers, never another rule: what two
    rules share lives in a helper module (``rules/common.py``, ``condition_said.py``,
    ``actions.py``...), so that a newcomer can tell the rules from what they are built of."""
    from cds_service.rules import RULE_MODULES

    rules = {f"cds_service.rules.{name}" for name in RULE_MODULES}
    crossing = [
        f"{name} imports {other}"
        for name in RULE_MODULES
        for other in sorted(_imported(PACKAGE / "rules" / f"{name}.py", "cds_service.rules") & rules)
        if other != f"cds_service.rules.{name}"
    ]
    assert crossing == []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a wheel installs it (not the source tree): built, then installed alone
    into a directory of its own; its dependencies come from the test environment."""
    wheels = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    target = tmp_path_factory.mktemp("installed")
    (wheel,) = wheels.glob("*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return target


def test_an_installed_package_serves_the_sandbox_fixture_with_its_shipped_content(
    installed: Path, tmp_path: Path
) -> None:
    """Run from another directory, so nothing of the source tree is importable or readable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env.update(PYTHONPATH=str(installed), CDS_AUTH_MODE="off", CDS_DATA_DIR=str(tmp_path / "var"))
    where = "import cds_service, sys; print(cds_service.__file__)"
    found = subprocess.run([sys.executable, "-c", where], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert found.stdout.strip().startswith(str(installed)), found.stdout + found.stderr
    port = free_port()
    command = [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}{SELECT}"
        request = fixture("cyclobenzaprine-duration/fires-sandbox-30-day-supply.json")
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.post(url, json=request, timeout=10)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    server.stderr.read() if server.stderr else ""
                )
                time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert [card["source"]["topic"]["code"] for card in response.json()["cards"]] == ["cyclobenzaprine-duration"]
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_rule_with_an_age_threshold_is_known_to_read_the_age() -> None:
    """Which rules read the age is their config's class (``OlderAdultConfig``): a rule declaring
    its own ``min_age`` would read the age unknown to the notices, and a patient of no known age
    would not be told the checks for older adults did not run."""
    from cds_service.rules import OlderAdultConfig, all_rules

    own = [rule.id for rule in all_rules() if "min_age" in rule.config.model_fields and not rule.reads_age]
    assert own == []
    assert any(issubclass(rule.config, OlderAdultConfig) for rule in all_rules())


def test_a_rule_for_a_hook_no_service_declares_is_refused() -> None:
    """A hook is declared once, by its service (``protocol.services``): a rule naming another
    ("order-selct") would have loaded and never run."""
    from dataclasses import replace

    from cds_service.rules import all_rules

    with pytest.raises(ValueError, match="no service is declared for hook order-selct"):
        replace(all_rules()[0], hooks=frozenset({"order-select", "order-selct"}))
