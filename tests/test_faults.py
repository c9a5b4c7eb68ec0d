"""Faults that must end in a sentence, not a traceback or a crash, and nothing already written lost."""
import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import train_dcgan
from conftest import REPO, run_main

QUICK = ["--max_train_images", "256", "--steps_per_execution", "4", "--grid_rows", "4", "--metrics_every", "0"]


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("faults") / "out")
    code, printed, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, printed[-3000:] + err[-3000:]
    return out


@pytest.fixture
def run_copy(one_epoch_run, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(one_epoch_run, out)
    return out


def read_state(out):
    with open(os.path.join(out, "checkpoint", "state.json")) as file:
        return json.load(file)


def test_a_disk_that_fills_up_stops_the_run_with_a_sentence_and_keeps_the_last_epoch(run_copy, monkeypatch):
    real_usage = shutil.disk_usage
    monkeypatch.setattr(train_dcgan.shutil, "disk_usage", lambda path: real_usage(path)._replace(free=5 * 2 ** 20))
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 2 and "epoch 2 could not be saved" in err and "5.0 MB free" in err
    assert "Epoch 1 is kept whole" in err and "Traceback" not in err
    assert read_state(run_copy)["epoch"] == 1
    assert sorted(os.listdir(os.path.join(run_copy, "samples"))) == ["epoch_001.png"]
    monkeypatch.undo()  # room made: the same command resumes
    code, printed, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 0, err[-3000:]
    assert "resuming the unfinished run" in printed or "continuing the finished run" in printed
    assert read_state(run_copy)["epoch"] == 2


def test_a_write_that_fails_mid_epoch_is_a_sentence(run_copy, monkeypatch):
    def refused(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(train_dcgan, "write_csv", refused)
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 2 and "epoch 2 could not be saved" in err and "Permission denied" in err
    assert read_state(run_copy)["epoch"] == 1


def test_a_killed_saves_temporary_files_are_removed_by_the_next_checkpoint(run_copy):
    leftover = os.path.join(run_copy, "checkpoint", ".tmp-99999-epoch_001.weights.h5")
    with open(leftover, "wb") as file:
        file.write(b"half a checkpoint")
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 0, err[-3000:]
    assert sorted(os.listdir(os.path.join(run_copy, "checkpoint"))) == ["epoch_002.weights.h5", "state.json"]


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_checkpoint_says_it_is_damaged_not_from_another_version(run_copy, damage):
    weights = os.path.join(run_copy, "checkpoint", read_state(run_copy)["weights"])
    if damage == "deleted":
        os.remove(weights)
    else:
        with open(weights, "r+b") as file:
            file.truncate(os.path.getsize(weights) // 2)
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 2 and "is damaged" in err and "another version" not in err
    assert ("is missing" if damage == "deleted" else "cannot be read") in err
    assert "--restart" in err and "up to epoch 1" in err
    assert os.path.exists(os.path.join(run_copy, "generator.keras"))


@pytest.mark.parametrize("content", ["{}", "[1, 2]", '{"epoch": 1}'])
def test_a_state_json_without_its_fields_is_a_sentence(run_copy, content):
    with open(os.path.join(run_copy, "checkpoint", "state.json"), "w") as file:
        file.write(content)
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", run_copy)
    assert code == 2 and "state.json is damaged" in err and "--restart" in err and "Traceback" not in err


@pytest.mark.parametrize("action", [["--generate", "4"], ["--interpolate", "--interpolation_frames", "2"]])
@pytest.mark.parametrize("where", ["a_file", "read_only"])
def test_actions_into_a_folder_that_cannot_be_written_are_a_sentence(one_epoch_run, tmp_path, action, where):
    target = tmp_path / where
    if where == "a_file":
        target.write_text("a file where a folder should be")
    else:
        target.mkdir()
        shutil.copy(os.path.join(one_epoch_run, "generator.keras"), target)
        os.chmod(target, 0o555)
    if where == "read_only" and os.access(target, os.W_OK):
        pytest.skip("this user writes into read-only folders (root)")
    code, _, err = run_main(*action, "--pretrained", "--output_dir", str(target))
    assert code == 2 and "is not a folder you can write to" in err and "Traceback" not in err


def test_actions_into_a_read_only_folder_as_root_too(one_epoch_run, tmp_path, monkeypatch):
    """Root writes anywhere; the refusal the operating system gives others is played here."""
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(train_dcgan.tempfile, "TemporaryFile", refused)
    for action in (["--generate", "4"], ["--interpolate", "--interpolation_frames", "2"]):
        code, _, err = run_main(*action, "--pretrained", "--output_dir", str(tmp_path / "out"))
        assert code == 2 and "is not a folder you can write to (Permission denied)" in err


def digit_image(digits, index, size=28):
    return Image.fromarray(np.rint(digits[index, ..., 0] * 255).astype(np.uint8)).resize((size, size))


def test_an_image_too_large_to_decode_is_skipped_with_a_warning(tmp_path, small_digits, monkeypatch, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        digit_image(small_digits[0], index).save(folder / f"digit_{index}.png")
    digit_image(small_digits[0], 3, size=400).save(folder / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 // 2)  # 400x400 is over twice that, as 13,500^2 is
    images, _, _ = train_dcgan.load_digits(str(folder))
    assert len(images) == 3
    printed = capsys.readouterr().out
    assert "too large to decode safely" in printed and "huge.png" in printed


def test_a_phone_photos_exif_orientation_is_applied(tmp_path, small_digits):
    upright = np.zeros((28, 28), np.uint8)
    upright[2:10, 4:24] = 255  # a bar near the top: rotated a quarter turn it would stand at a side
    sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: "rotate 90 CW to view", as a phone held upright writes
    folder = tmp_path / "photos"
    folder.mkdir()
    sideways.save(folder / "photo.png", exif=exif)
    images, _, _ = train_dcgan.load_digits(str(folder))
    rows = images[0, ..., 0].mean(1)
    assert rows.argmax() < 10 and rows[16:].max() < 0.05  # the bar is at the top again


def class_folders(root, names, digits, per_class=30):
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for index in np.flatnonzero(digits[1] == int(name))[:per_class]:
            digit_image(digits[0], index).save(os.path.join(root, name, f"{index}.png"))


def test_a_train_and_test_layout_is_two_splits_not_two_classes(tmp_path, mnist_train):
    root = str(tmp_path / "split")
    class_folders(os.path.join(root, "train"), ["3", "8"], mnist_train)
    class_folders(os.path.join(root, "test"), ["3", "8"], mnist_train, per_class=10)
    data = train_dcgan.load_training_data(root, seed=0)
    assert data.class_names == ["3", "8"] and len(data.images) == 60
    assert len(data.reference) == 20 and "test" in data.reference_name  # its own test split, not a held-out part


def test_data_with_some_digits_is_not_warned_about_the_digits_it_never_had(tmp_path, mnist_train):
    root = str(tmp_path / "low_digits")
    class_folders(root, ["0", "1", "2", "3", "4"], mnist_train, per_class=120)  # 60 held out for the metrics
    code, printed, err = run_main("--data", root, "--epochs", "1", "--grid_rows", "5",
                                  "--metrics_every", "1", "--metrics_samples", "100", "--steps_per_execution", "4",
                                  "--output_dir", str(tmp_path / "out"))
    assert code == 0, err[-3000:]
    floor = next(line for line in printed.splitlines() if "real-data floor" in line)
    assert "smallest class 0.0%" not in floor
    warnings = [line for line in printed.splitlines() if "mode collapse" in line]
    assert not any(digit in line for line in warnings for digit in ("5", "6", "7", "8", "9"))


class FakeDevice:
    def __init__(self, name):
        self.name = name


def test_the_log_names_a_gpu_and_says_resumes_are_not_bit_identical_there(monkeypatch):
    monkeypatch.setattr(train_dcgan.tf.config, "list_physical_devices", lambda kind=None: [FakeDevice("/physical_device:GPU:0")])
    monkeypatch.setattr(train_dcgan.tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "NVIDIA T4"})
    text = train_dcgan.training_devices()
    assert "1 GPU(s): NVIDIA T4" in text and "not bit-identical" in text


def test_an_nvidia_driver_without_a_gpu_in_tensorflow_names_the_fix(monkeypatch):
    monkeypatch.setattr(train_dcgan.tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(train_dcgan, "nvidia_driver_present", lambda: True)
    text = train_dcgan.training_devices()
    assert text.startswith("the CPU") and "tensorflow[and-cuda]" in text and "WSL2" in text
    monkeypatch.setattr(train_dcgan, "nvidia_driver_present", lambda: False)
    assert "and-cuda" not in train_dcgan.training_devices()


FATAL_IMPORT = r"""
import os, sys
os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n")
os.write(2, b"F0000 00:00:2 cpu_feature_guard.cc:1] The TensorFlow library was compiled to use AVX instructions\n")
os.abort()
"""


def test_a_fatal_message_printed_while_tensorflow_loads_reaches_the_user(tmp_path):
    """A stand-in tensorflow package that prints a start-up note and a fatal error, then aborts the process."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FATAL_IMPORT)
    code = f"import sys; sys.path[:0] = [{str(fake.parent)!r}, {REPO!r}]; import train_dcgan"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert result.returncode != 0
    assert b"compiled to use AVX instructions" in result.stderr  # the fatal error reaches the user
