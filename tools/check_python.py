"""Say in a sentence whether this Python can run train_dcgan.py, before pip spends time on it.

    python3 tools/check_python.py     # README's set-up command runs this first

TensorFlow 2.20 and 2.21, which the script is written for, have wheels for Python 3.10 to 3.13 only, and Keras
3.15, the oldest that loads the generators the script saves, needs 3.11; on any other Python `pip install -r
requirements.txt` fails with "No matching distribution found", which does not say why. Exit code 0 when the
Python fits, 1 with the reason and the fix when it does not.
"""
import sys

SUPPORTED = ((3, 11), (3, 13))  # Keras 3.15 needs 3.11; TensorFlow 2.21 has wheels up to 3.13


def problem(version=sys.version_info[:2]):
    """None when `version` (major, minor) can run the script, else a sentence saying why and what to do."""
    if SUPPORTED[0] <= tuple(version) <= SUPPORTED[1]:
        return None
    low, high = (f"{major}.{minor}" for major, minor in SUPPORTED)
    which = "too new" if tuple(version) > SUPPORTED[1] else "too old"
    why = ("TensorFlow 2.21 has wheels up to 3.13" if which == "too new" else
           "Keras 3.15, the oldest that loads the generators this script saves, needs 3.11")
    return (f"This is Python {version[0]}.{version[1]}, {which} for this script, which runs on Python {low} to "
            f"{high} ({why}). Install one of those (python.org, your package manager, pyenv, or "
            f"`uv python install {high}`), then run the same command with it: python{high} in place of python3 "
            f"(on Windows, py -{high} in place of py).")


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(1 if message else 0)
