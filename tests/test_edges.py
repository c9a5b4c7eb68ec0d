"""The edges a review found: what the data is rather than how it is spelled, labels as names, stray files, huge
images, words a user pastes back, and settings a run ignores."""
import os
import shlex
import tracemalloc
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

import train_dcgan
from conftest import run_main

QUICK = ["--steps_per_execution", "2", "--grid_rows", "2", "--metrics_every", "0", "--batch_size", "16"]


def write_npz(path, images, labels, **more):
    np.savez(path, x_train=np.rint(images[..., 0] * 255).astype(np.uint8), y_train=labels, **more)
    return str(path)


def test_resume_compares_what_the_data_is_not_how_it_is_spelled(tmp_path, small_digits, monkeypatch):
    images, labels = small_digits
    for folder, count in (("first", 128), ("second", 96)):  # two different files of the same name
        os.mkdir(tmp_path / folder)
        write_npz(tmp_path / folder / "eleven.npz", images[:count], labels[:count])
    out = str(tmp_path / "out")
    monkeypatch.chdir(tmp_path / "first")
    code, _, err = run_main("--data", "eleven.npz", "--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    for spelling in ("./eleven.npz", str(tmp_path / "first" / "eleven.npz")):  # the same file, spelled otherwise
        code, printed, err = run_main("--data", spelling, "--epochs", "1", *QUICK, "--output_dir", out)
        assert code == 0 and "nothing to train" in printed, err[-3000:]
    code, printed, err = run_main("--data", "./eleven.npz", "--epochs", "2", *QUICK, "--output_dir", out)
    assert code == 0 and "continuing the finished run" in printed, err[-3000:]
    monkeypatch.chdir(tmp_path / "second")  # eleven.npz here holds other images
    code, _, err = run_main("--data", "eleven.npz", "--epochs", "3", *QUICK, "--output_dir", out)
    assert code == 2 and "was trained on other images" in err
    assert f"--data {shlex.quote(str(tmp_path / 'first' / 'eleven.npz'))}" in err


def test_npz_labels_that_are_names_become_classes(tmp_path, small_digits):
    images, labels = small_digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[labels]
    test_images = np.rint(images[:50, ..., 0] * 255).astype(np.uint8)  # a test split: nothing held out, order kept
    data = train_dcgan.load_training_data(write_npz(tmp_path / "named.npz", images, names, x_test=test_images), seed=0)
    assert sorted(data.class_names) == sorted(set(names)) and len(data.class_names) == 10
    assert [data.class_names[index] for index in data.labels[:5]] == list(names[:5])
    as_bytes = write_npz(tmp_path / "bytes.npz", images, names.astype("S"), x_test=test_images)
    assert train_dcgan.load_training_data(as_bytes, seed=0).class_names == data.class_names
    code, printed, err = run_main("--data", str(tmp_path / "named.npz"), "--epochs", "1", *QUICK,
                                  "--output_dir", str(tmp_path / "out"))
    assert code == 0 and "10 classes (eight, five, four, nine, one, seven, six, three, two, zero)" in printed, err


def test_an_npz_with_test_images_but_no_test_labels_trains(tmp_path, small_digits):
    images, labels = small_digits
    path = write_npz(tmp_path / "no_y_test.npz", images[:200], labels[:200],
                     x_test=np.rint(images[200:, ..., 0] * 255).astype(np.uint8))
    data = train_dcgan.load_training_data(path, seed=0)
    assert len(data.images) == 200 and len(data.reference) == 100  # the test images are the reference


def save_digit(path, digit):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.rint(digit[..., 0] * 255).astype(np.uint8)).save(path)


def test_a_stray_file_beside_class_folders_is_skipped_with_a_warning_naming_it(tmp_path, small_digits, capsys):
    images, labels = small_digits
    for index in range(60):
        save_digit(str(tmp_path / "digits" / str(labels[index]) / f"{index}.png"), images[index])
    save_digit(str(tmp_path / "digits" / "preview.png"), images[99])
    loaded, found, _ = train_dcgan.load_digits(str(tmp_path / "digits"))
    assert len(loaded) == 60 and found is not None and len(set(found)) == len(set(labels[:60]))
    printed = capsys.readouterr().out
    assert "skipped 1 file(s)" in printed and "preview.png" in printed and "class folders" in printed


def test_a_train_folder_alone_is_the_training_split(tmp_path, small_digits):
    images, labels = small_digits
    for index in range(100):
        save_digit(str(tmp_path / "digits" / "train" / str(labels[index] % 2) / f"{index}.png"), images[index])
    data = train_dcgan.load_training_data(str(tmp_path / "digits"), seed=0)
    assert data.class_names == ["0", "1"] and "train split" in data.source
    assert len(data.images) + len(data.reference) == 100  # a tenth held out, no class named "train"


def test_a_huge_image_is_shrunk_before_it_is_converted(tmp_path):
    """A 48-megapixel RGBA drawing: the digit survives, numpy never holds the full-size image as floats, and
    Pillow's decompression-bomb warning (for images over 89 megapixels) is not printed for what is shrunk."""
    image = Image.new("RGBA", (8000, 6000), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((2000, 1000, 6000, 5000), outline=(0, 0, 0, 255), width=500)  # an "0" in ink
    os.mkdir(tmp_path / "big")
    image.save(tmp_path / "big" / "zero.png")
    del image
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        loaded, _, _ = train_dcgan.load_digits(str(tmp_path / "big"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2 ** 20, peak  # the full image as float32 RGBA would be 768 MB
    digit = loaded[0, ..., 0]
    assert digit[14, 14] < 0.2 and digit[14].max() > 0.5  # a white ring on black (dark ink on transparent, inverted)


def test_suggested_commands_are_quoted_for_pasting_back(tiny_config):
    state = {"epoch": 1, "weights": "epoch_001.weights.h5", "finished": False, "policy": "float32", "spans": [],
             "config": dict(tiny_config, LATENT_DIM=64), "random_states": [],
             "data": {"path": "my digits/eleven.npz", "source": "eleven digits", "fingerprint": "0123"}}
    with pytest.raises(train_dcgan.FixableError) as error:
        other = train_dcgan.TrainingData(*[None] * 8)._replace(source="other digits")
        train_dcgan.check_same_data(state, other, "4567", tiny_config["OUTPUT_DIR"])
    assert "--data 'my digits/eleven.npz'" in str(error.value)
    with pytest.raises(train_dcgan.FixableError) as error:
        train_dcgan.check_resumable(state, tiny_config, "float32")
    assert shlex.split(str(error.value).split("Continue it with ")[1].split(";")[0])[:2] == [
        "--conditional", "False"]


def test_a_conditional_run_continues_whatever_noise_class_says(tmp_path):
    out = str(tmp_path / "out")
    common = ["--max_train_images", "128", *QUICK, "--conditional", "1", "--output_dir", out]
    code, _, err = run_main("--epochs", "1", *common)
    assert code == 0, err[-3000:]
    code, printed, err = run_main("--epochs", "2", "--noise_class", "0", *common)
    assert code == 0 and "continuing the finished run" in printed, err[-3000:]


def test_words_the_review_found_wrong(tmp_path, monkeypatch, capsys):
    help_text = train_dcgan.build_arg_parser().format_help()
    assert "conditional generator:" not in help_text and "classes (the default's" in " ".join(help_text.split())
    monkeypatch.setattr(train_dcgan, "kernel_distance", lambda *args, **kwargs: -0.0004)
    data = train_dcgan.TrainingData(*([None] * len(train_dcgan.TrainingData._fields)))._replace(
        reference=np.zeros((60, 28, 28, 1), np.float32), pool=np.random.default_rng(0).random((100, 28, 28, 1)),
        class_names=[], reference_name="test images")
    train_dcgan.build_quality_evaluator(data, 100, 128, 0)
    assert "KID is an unbiased estimate" in capsys.readouterr().out


def test_an_unwritable_folder_is_named_as_it_is(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(train_dcgan.tempfile, "TemporaryFile", refused)
    code, _, err = run_main("--generate", "2", "--pretrained", "--output_dir", str(tmp_path / "out"))
    assert code == 2 and f"{tmp_path / 'out' / 'generated'} is not a folder you can write to" in err
    assert "--output_dir '" not in err


def test_the_log_says_one_device_not_tensorflows_private_name(tmp_path):
    code, printed, err = run_main("--epochs", "1", "--max_train_images", "64", *QUICK, "--output_dir",
                                  str(tmp_path / "out"))
    assert code == 0 and "one device, 16 digits a step" in printed and "_Default" not in printed, err


def test_a_generator_from_a_newer_keras_names_both_versions_and_the_fix(tmp_path, capsys):
    import zipfile
    path = tmp_path / "generator.keras"
    with zipfile.ZipFile(path, "w") as archive:  # as a newer Keras would write it, with a config this one refuses
        archive.writestr("metadata.json", '{"keras_version": "99.0.0"}')
        archive.writestr("config.json", '{"class_name": "Functional", "config": {"layers": "from the future"}}')
    code = train_dcgan.main(generate=2, output_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "saved by Keras 99.0.0" in err and f"Keras {train_dcgan.keras.__version__} installed" in err
    assert "pip install -U keras" in err and "Train again" not in err and len(err.strip().splitlines()) == 1
    path.write_bytes(b"not a zip at all")  # damaged: training again is the fix
    code = train_dcgan.main(generate=2, output_dir=str(tmp_path))
    assert code == 2 and "Train again to replace it" in capsys.readouterr().err
