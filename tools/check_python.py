"""Say in a sentence whether this Python can run train_dcgan.py, before pip spends time on it.

    python3 tools/check_python.py     # README's set-up command runs this first

TensorFlow 2.21, which the script is written for, has wheels for Python 3.10 to 3.13 only; on any other Python
`pip install -r requirements.txt` fails with "No matching distribution found for tensorflow", which does not say
why. Exit code 0 when the Python fits, 1 with the reason and the fix when it does not.
"""
import sys

SUPPORTED = ((3, 10), (3, 13))  # the oldest and newest Python with TensorFlow 2.21 wheels


def problem(version=sys.version_info[:2]):
    """None when `version` (major, minor) can run the script, else a sentence saying why and what to do."""
    if SUPPORTED[0] <= tuple(version) <= SUPPORTED[1]:
        return None
    low, high = (f"{major}.{minor}" for major, minor in SUPPORTED)
    which = "too new" if tuple(version) > SUPPORTED[1] else "too old"
    return (f"This is Python {version[0]}.{version[1]}, {which} for TensorFlow 2.21, which has wheels for Python "
            f"{low} to {high} only. Install one of those (python.org, your package manager, pyenv, or "
            f"`uv python install {high}`), then run the same command with it: python{high} in place of python3 "
            f"(on Windows, py -{high} in place of py).")


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(1 if message else 0)
