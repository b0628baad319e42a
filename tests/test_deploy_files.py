"""The production files that no test process runs here (there is no systemd and no Docker on the
build machine) still name real commands and real settings: a renamed option or setting fails
here, not on a county's server."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from server.cli import main
from server.settings import PROJECT_ROOT, Settings

SYSTEMD = PROJECT_ROOT / "deploy" / "systemd"
GRIDWATCH = "/opt/gridwatch/.venv/bin/gridwatch"
SETTINGS = {f"GRIDWATCH_{name.upper()}" for name in Settings.model_fields}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def gridwatch_commands(text: str) -> list[list[str]]:
    """Each `gridwatch …` command line in a unit's ExecStart (also inside `sh -c '…'`)."""
    text = text.replace("%%", "%")
    return [shlex.split(match) for match in re.findall(re.escape(GRIDWATCH) + r"((?: [^;'\"$]+)*)", text)]


@pytest.mark.parametrize("path", sorted(SYSTEMD.glob("*.service")), ids=lambda path: path.name)
def test_each_service_runs_a_real_gridwatch_command_with_its_settings(path: Path):
    service = unit(path)["Service"]
    assert service["EnvironmentFile"] == "/etc/gridwatch/gridwatch.env"
    commands = gridwatch_commands(service["ExecStart"])
    assert commands, f"{path.name} runs no gridwatch command"
    for command in commands:
        first_option = next((i for i, word in enumerate(command) if word.startswith("-")), len(command))
        result = CliRunner().invoke(main, [*command[:first_option], "--help"])
        assert result.exit_code == 0, (path.name, command, result.output)
        for option in (word.split("=")[0] for word in command if word.startswith("--")):
            assert option in result.output, (path.name, option)


@pytest.mark.parametrize("path", sorted(SYSTEMD.glob("*.timer")), ids=lambda path: path.name)
def test_each_timer_starts_a_service_that_exists(path: Path):
    assert unit(path)["Timer"]["OnCalendar"]
    assert path.with_suffix(".service").exists()


def test_the_environment_example_and_compose_name_only_real_settings():
    example = (SYSTEMD / "gridwatch.env.example").read_text()
    named = set(re.findall(r"^#?(GRIDWATCH_[A-Z_]+)=", example, re.MULTILINE))
    compose = yaml.safe_load((PROJECT_ROOT / "docker" / "compose.yaml").read_text())
    named |= {name for name in compose["x-gridwatch"]["environment"] if name.startswith("GRIDWATCH_")}
    assert named - SETTINGS == set()
    # What production must set is set in both.
    for name in ("GRIDWATCH_SECRET_KEY", "GRIDWATCH_OWNER_DATABASE_URL", "GRIDWATCH_TRUSTED_PROXIES"):
        assert name in example and name in compose["x-gridwatch"]["environment"], name


def test_compose_never_loads_the_demo_unless_asked_by_name():
    services = yaml.safe_load((PROJECT_ROOT / "docker" / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        command = " ".join(service.get("command") or [])
        if "demo" in command:
            assert service.get("profiles") == ["demo"], name
