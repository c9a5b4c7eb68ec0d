"""Shared fixtures: real MNIST digits, and helpers to run the script."""
import contextlib
import io
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import train_dcgan  # noqa: E402  (the path above must come first)


@pytest.fixture(scope="session")
def mnist_train():
    images, labels, _ = train_dcgan.load_digits("auto", "train")
    return images, labels


@pytest.fixture(scope="session")
def mnist_test():
    images, labels, _ = train_dcgan.load_digits("auto", "test")
    return images, labels


@pytest.fixture(scope="session")
def small_digits(mnist_train):
    """300 real training digits and their labels."""
    images, labels = mnist_train
    return images[:300], labels[:300]


def run_script(*args, cwd=None, timeout=600):
    """Run train_dcgan.py in a fresh Python process; return the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, os.path.join(REPO, "train_dcgan.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_main(*args):
    """train_dcgan.main(args) in this process, which has TensorFlow loaded already (a fresh process spends ~8 s
    starting it), its stdout and stderr caught; return (exit code, stdout, stderr). Stdout is no terminal here,
    as with `> train.log`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train_dcgan.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """A training run in this process sets Keras' global precision policy; the next test starts from float32."""
    yield
    train_dcgan.keras.mixed_precision.set_global_policy("float32")


def use_saved_generator_without_the_script(path, lines, cwd):
    """Run `lines` in a fresh Python that has loaded `path` as `g` with plain Keras (not this project's script);
    check the script stayed unimported and return the last line printed."""
    code = (f"import sys, numpy as np, keras\ng = keras.models.load_model({path!r})\n{lines}"
            "assert 'train_dcgan' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def epoch_outputs(output_dir, last_epoch=3, **kwargs):
    """The run's EpochOutputs callback for a test's own fit(): a 4x4 grid, no metrics unless given."""
    grid = train_dcgan.fixed_sample_inputs(0, 4, train_dcgan.LATENT_DIM)
    return train_dcgan.EpochOutputs(str(output_dir), last_epoch, 64, grid, **kwargs)


@pytest.fixture
def tiny_config(tmp_path):
    """The defaults, shrunk for quick runs into a temporary OUTPUT_DIR."""
    return dict(train_dcgan.DEFAULT_CONFIG, OUTPUT_DIR=str(tmp_path / "out"), EPOCHS=2, STEPS_PER_EXECUTION=4,
                METRICS_EVERY=0, GRID_ROWS=4)
