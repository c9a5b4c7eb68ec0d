"""Command-line overrides, --help, and every bad value stopping before OUTPUT_DIR is touched."""
import os
import subprocess
import sys

import numpy as np
import pytest

import train_dcgan
from conftest import REPO, run_main


def test_overrides_take_the_constants_types():
    config, _ = train_dcgan.parse_config(["--epochs", "3", "--d_learning_rate", "1e-3", "--output_dir", "/x"])
    assert config["EPOCHS"] == 3 and config["D_LEARNING_RATE"] == 1e-3 and config["OUTPUT_DIR"] == "/x"
    assert config["BATCH_SIZE"] == train_dcgan.BATCH_SIZE  # untouched constants keep their defaults


def test_help_lists_every_constant_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_dcgan.parse_config(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, default in train_dcgan.DEFAULT_CONFIG.items():
        assert f"--{name.lower()}" in text
        assert f"(default: {default})" in text


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch_size", "-4"], "--batch_size must be at least 1"),
    (["--beta_1", "1.5"], "--beta_1 must be at least 0 and below 1"),
    (["--g_learning_rate", "0"], "--g_learning_rate must be a positive number"),
    (["--ema_decay", "1"], "--ema_decay must be at least 0 and below 1"),
    (["--d_group_std", "5"], "--d_group_std must be 0 .off. or divide --batch_size 32"),
])
def test_bad_values_are_clear_errors(argv, message):
    with pytest.raises(train_dcgan.FixableError, match=message):
        train_dcgan.parse_config(argv)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "ten"], "'ten' is not a valid int for --epochs"),
    (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag"),
])
def test_unparseable_flags_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_dcgan.parse_config(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_value_exits_nonzero_before_touching_output_dir(tmp_path):
    out = tmp_path / "out"
    code, _, err = run_main("--epochs", "0", "--output_dir", str(out))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: --epochs must be at least 1")
    assert not out.exists()


def test_missing_data_is_an_error_before_output(tmp_path):
    out = tmp_path / "out"
    code, _, err = run_main("--data", str(tmp_path / "no_such_place"), "--output_dir", str(out))
    assert code == 2 and "no_such_place' does not exist" in err
    assert not out.exists()


def test_batch_larger_than_the_data_is_an_error_before_output(tmp_path, small_digits):
    out = tmp_path / "out"
    code, _, _ = run_main("--max_train_images", "20", "--batch_size", "32", "--output_dir", str(out))
    assert code == 2
    assert not out.exists()


def test_unwritable_output_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")
    code, _, err = run_main("--max_train_images", "64", "--output_dir", str(blocker / "out"))
    assert code == 2
    assert "is not a folder you can write to" in err
    assert blocker.read_text() == "a file where a folder should be"


def test_corrupt_data_file_leaves_existing_outputs_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "generator.keras").write_bytes(b"an earlier run's model")
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run_main("--data", str(bad), "--output_dir", str(out))
    assert code == 2
    assert "mnist.npz" in err
    assert (out / "generator.keras").read_bytes() == b"an earlier run's model"
    assert sorted(os.listdir(out)) == ["generator.keras"]


def test_generate_without_a_trained_generator_is_a_clear_error(tmp_path):
    code, _, err = run_main("--generate", "10", "--output_dir", str(tmp_path))
    assert code == 2
    assert "no trained generator" in err
    assert os.listdir(tmp_path) == []


def test_image_folder_with_junk_files_loads_its_images(tmp_path, small_digits):
    from PIL import Image
    folder = tmp_path / "my_digits"
    folder.mkdir()
    for index, image in enumerate(small_digits[0][:40]):
        picture = Image.fromarray(np.rint(image[..., 0] * 255).astype(np.uint8))
        picture.resize((56, 56)).convert("RGB" if index % 2 else "L").save(folder / f"{index}.png")
    (folder / "Thumbs.db").write_bytes(b"\x00\x01junk")
    data = train_dcgan.load_training_data(str(folder), seed=0)
    assert data.images.shape == (36, 28, 28, 1) and data.reference.shape == (4, 28, 28, 1)  # a tenth held out
    assert data.labels is None and data.class_names == []


@pytest.mark.parametrize("argv, message", [
    (["--generate", "0"], "--generate needs a number of digits of at least 1"),
    (["--pretrained"], "--pretrained picks the generator for --generate N, --evaluate or --interpolate"),
    (["--interpolation_frames", "0"], "--interpolation_frames must be at least 1"),
])
def test_bad_actions_are_clear_errors_not_training_runs(argv, message, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_main(*argv, "--output_dir", str(out))
    assert code == 2 and message in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--generate", "5", "--evaluate"], "argument --evaluate: not allowed with argument --generate"),
    (["--evaluate", "--interpolate"], "argument --interpolate: not allowed with argument --evaluate"),
    (["--generate", "5", "--restart"], "argument --restart: not allowed with argument --generate"),
    (["--strategy", "tpu"], "argument --strategy: invalid choice: 'tpu'"),
    (["--precision", "float8"], "argument --precision: invalid choice: 'float8'"),
])
def test_two_actions_or_an_unknown_choice_exit_2_naming_the_flags(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    code = train_dcgan.main([*argv, "--output_dir", str(out)])  # argparse's exit becomes main's status
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--metrics_samples", "3"], "--metrics_samples must be at least 100"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--seed", "4294967296"], "--seed must be 0 or more and below 2..32"),
    (["--seed", "9" * 400], "--seed must be 0 or more and below 2..32"),
    (["--g_learning_rate", "inf"], "--g_learning_rate must be a positive number"),
    (["--r1_gamma", "nan"], "--r1_gamma must be 0 .off. or a positive weight"),
])
def test_metric_settings_that_cannot_work_are_refused_before_training(argv, message):
    with pytest.raises(train_dcgan.FixableError, match=message):
        train_dcgan.parse_config(argv)


def test_the_largest_seed_is_accepted():
    config, _ = train_dcgan.parse_config(["--seed", str(2 ** 32 - 1)])
    train_dcgan.keras.utils.set_random_seed(config["SEED"])  # the call that failed with a traceback above 2**32 - 1
    assert config["SEED"] == 2 ** 32 - 1


PORTABILITY_CHECK = r"""
import os, sys
sys.modules["fcntl"] = None  # as on Windows: importing it raises ImportError
sys.path.insert(0, sys.argv[1])
import train_dcgan
import keras
assert keras.backend.backend() == "tensorflow", keras.backend.backend()
print("imported on", keras.backend.backend())
"""


def test_the_script_imports_without_fcntl_and_runs_on_tensorflow_whatever_keras_backend_says():
    env = dict(os.environ, KERAS_BACKEND="jax")  # jax is not installed here: Keras would fail to import it
    result = subprocess.run([sys.executable, "-c", PORTABILITY_CHECK, REPO], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported on tensorflow" in result.stdout


HOLD_THE_LOCK = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import train_dcgan
with train_dcgan.locked_output_dir(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_run_holding_the_lock_in_another_process_blocks_this_one_until_it_is_killed(tmp_path):
    out = str(tmp_path / "out")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, REPO, out], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(train_dcgan.FixableError, match="another training run is using"):
            with train_dcgan.locked_output_dir(out):
                pass
    finally:
        holder.kill()  # as a run killed mid-epoch: the operating system releases its lock
        holder.wait()
    with train_dcgan.locked_output_dir(out):
        assert os.path.exists(os.path.join(out, ".lock"))


def test_a_lock_that_fails_for_another_reason_says_so(tmp_path, monkeypatch):
    def no_locks(self, *args, **kwargs):
        raise OSError(37, "No locks available")  # ENOLCK, as on some network drives

    monkeypatch.setattr(train_dcgan.filelock.FileLock, "acquire", no_locks)
    with pytest.raises(train_dcgan.FixableError, match="cannot be locked .*No locks available.*local disk"):
        with train_dcgan.locked_output_dir(str(tmp_path)):
            pass
