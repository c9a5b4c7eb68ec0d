"""The set-up: a Python TensorFlow cannot serve is told so in a sentence before pip starts."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))
import check_python  # noqa: E402


@pytest.mark.parametrize("version", [(3, 11), (3, 12), (3, 13)])
def test_the_pythons_tensorflow_has_wheels_for_pass(version):
    assert check_python.problem(version) is None


@pytest.mark.parametrize("version, word", [((3, 14), "too new"), ((3, 10), "too old"), ((3, 9), "too old"),
                                            ((4, 0), "too new")])
def test_other_pythons_are_told_why_and_what_to_install(version, word):
    message = check_python.problem(version)
    assert f"Python {version[0]}.{version[1]}, {word}" in message
    assert "3.11 to 3.13" in message and "python3.13 in place of python3" in message


def test_this_python_passes_the_check_as_a_command():
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "check_python.py")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""


def test_readmes_commands_check_the_python_first_and_install_into_a_virtual_environment():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as file:
        commands = [line for line in file if line.startswith("python3 tools/check_python.py && ")]
    assert len(commands) == 2 and any("pytest" in line for line in commands)
    for line in commands:
        assert "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt" in line
