"""Whole runs of the script in subprocesses: every output, reloading, --generate, --evaluate, kill and resume."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

import train_dcgan
from conftest import REPO, run_main, run_script, use_saved_generator_without_the_script

QUICK = ["--max_train_images", "320", "--steps_per_execution", "5", "--grid_rows", "4"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Two epochs on 320 real digits with metrics after each, into a fresh OUTPUT_DIR."""
    out = str(tmp_path_factory.mktemp("run") / "out")
    code, printed, err = run_main("--epochs", "2", *QUICK, "--metrics_every", "1", "--metrics_samples", "500",
                                  "--output_dir", out)
    assert code == 0, printed[-3000:] + err[-3000:]
    return out, printed


def csv_rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_finished_run_writes_every_output(finished_run):
    out, log = finished_run
    for name in ["samples/epoch_001.png", "samples/epoch_002.png", "generated_images.gif", "real_samples.png",
                 "generator.keras", "discriminator.keras", "history.csv", "losses.png", "metrics.csv",
                 "metrics.png"]:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert len(iio.imread(os.path.join(out, "generated_images.gif"), index=None)) == 2
    history = csv_rows(os.path.join(out, "history.csv"))
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert all(np.isfinite(float(row[key])) for row in history for key in ("d_loss", "g_loss", "d_real", "d_fake"))
    metrics = csv_rows(os.path.join(out, "metrics.csv"))
    assert [row["epoch"] for row in metrics] == ["1", "2"]
    for column in ["fid", "kid", "precision", "recall", "class_entropy", "min_class_share", "mean_confidence"]:
        assert np.isfinite(float(metrics[0][column])), column
    seconds = [float(row["epoch_seconds"]) for row in history]
    assert all(s > 0 for s in seconds) and float(history[0]["images_per_s"]) == pytest.approx(320 / seconds[0])
    assert float(metrics[1]["training_minutes"]) == pytest.approx(sum(seconds) / 60)
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]
    # The log names the data source and size, shows both summaries, and ends with the timing line.
    assert "data: 320 training images" in log and "data/mnist.npz" in log.replace(os.sep, "/")
    first_screen = log[:log.index("epoch 1 ")].splitlines()  # before the first progress (plain: an epoch's line)
    assert len(first_screen) <= 10, first_screen
    assert "models: generator 1," in log and "Model: \"generator\"" not in log
    tables = open(os.path.join(out, "models.txt"), encoding="utf-8").read()
    assert 'Model: "generator"' in tables and 'Model: "discriminator"' in tables
    assert "real-data floor (500 training images)" in log  # as many as the generated digits scored
    assert "against the 10,000 MNIST test digits" in log
    assert "images/s" in log.strip().splitlines()[-1]


def test_a_log_that_is_not_a_terminal_is_plain_with_one_line_per_epoch(finished_run):
    _, log = finished_run  # run_main catches stdout in a buffer, no terminal, as `> train.log` is
    assert "\r" not in log and "\x1b" not in log
    assert [line.split(":")[0] for line in log.splitlines() if line.startswith("epoch ") and "/2:" in line] \
        == ["epoch 1/2", "epoch 2/2"]
    assert "images/s" in next(line for line in log.splitlines() if line.startswith("epoch 2/2:"))


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="the CUDA probe only fails without a driver")
def test_a_healthy_run_on_a_machine_without_gpus_logs_no_error_lines(tmp_path):
    result = run_script("--epochs", "1", *QUICK, "--metrics_every", "0", "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (result.stdout + result.stderr).splitlines()
    # TensorFlow's start-up notes ("I0000 ... oneDNN custom operations are on ... round-off errors") are its own, and
    # so is the one line TensorFlow 2.20's graph optimizer prints whatever the log level ("remapper failed", on the
    # R1 penalty's nested gradient; docs/experiments.md, 2026-12-05); 2.21 prints nothing of the kind.
    tensorflow_220 = train_dcgan.tf.__version__.startswith("2.20.")
    assert not [line for line in lines if (line.startswith("E0000") or "cuInit" in line
                                           or "error" in line.lower() and not line.startswith("I0000"))
                and not (tensorflow_220 and "meta_optimizer.cc" in line and "remapper failed" in line)]


def tensorboard_events(folder):
    """{tag: [(step, value or image), ...]} from the event files in folder."""
    import tensorflow as tf
    events = {}
    for path in sorted(os.listdir(folder)):
        for record in tf.data.TFRecordDataset(os.path.join(folder, path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                events.setdefault(value.tag, []).append((event.step, tensor))
    return events


def test_tensorboard_holds_every_epochs_scalars_metrics_and_sample_grid(finished_run):
    out, _ = finished_run
    events = tensorboard_events(os.path.join(out, "tensorboard"))
    for tag in ["d_loss", "g_loss", "d_real", "d_fake", "images_per_s", "quality/fid", "quality/precision",
                "quality/mean_confidence"]:
        assert [step for step, _ in events[tag]] == [1, 2], tag
    history = csv_rows(os.path.join(out, "history.csv"))
    assert float(events["d_loss"][1][1]) == pytest.approx(float(history[1]["d_loss"]), rel=1e-5)
    # An image summary stores (width, height, PNG bytes); the grid is the epoch's sample grid.
    width, height, png = events["samples"][1][1]
    grid = iio.imread(os.path.join(out, "samples", "epoch_002.png"))
    assert (int(width), int(height)) == (grid.shape[1], grid.shape[0])
    np.testing.assert_array_equal(iio.imread(png).reshape(grid.shape), grid)


def test_interpolate_writes_a_looping_gif_of_the_stated_frames(finished_run):
    out, _ = finished_run
    code, _, err = run_main("--interpolate", "--interpolation_frames", "12", "--grid_rows", "3",
                                  "--output_dir", out)
    assert code == 0, err[-2000:]
    frames = iio.imread(os.path.join(out, "interpolation.gif"), index=None)
    assert len(frames) == 12 and frames.shape[1:3] == (3 * 30 + 2, 3 * 30 + 2)
    steps = [np.abs(frames[i].astype(int) - frames[(i + 1) % 12]).mean() for i in range(12)]
    assert max(steps) < np.abs(frames[0].astype(int) - frames[6]).mean()  # neighbours closer than the far side


def test_latent_loop_keeps_the_norm_and_closes():
    keypoints = np.random.default_rng(0).standard_normal((4, 5, 128))
    path = train_dcgan.latent_loop(keypoints, 40)
    assert path.shape == (40, 5, 128)
    np.testing.assert_allclose(path[::10], keypoints, rtol=1e-5)
    norms = np.linalg.norm(path, axis=-1)
    assert norms.min() > 0.85 * np.linalg.norm(keypoints, axis=-1).min()  # a straight line would sag to ~0.7


def test_generator_reloads_without_importing_the_script(finished_run, tmp_path):
    out, _ = finished_run
    printed = use_saved_generator_without_the_script(
        os.path.join(out, "generator.keras"),
        "x = np.asarray(g.predict(np.random.default_rng(0).standard_normal((5, 128)), verbose=0))\n"
        "print(x.shape, x.dtype, x.min() >= 0, x.max() <= 1)\n", str(tmp_path))
    assert printed == "(5, 28, 28, 1) float32 True True"


def test_generate_writes_a_grid_single_digits_and_an_array(finished_run):
    out, _ = finished_run
    code, printed, err = run_main("--generate", "12", "--seed", "7", "--output_dir", out)
    assert code == 0, err[-2000:]
    folder = os.path.join(out, "generated")
    assert folder in printed
    digits = np.load(os.path.join(folder, "digits.npy"))
    assert digits.shape == (12, 28, 28, 1) and 0 <= digits.min() and digits.max() <= 1
    assert sorted(n for n in os.listdir(folder) if n.startswith("digit_")) == [f"digit_{i:04d}.png" for i in range(12)]
    assert os.path.exists(os.path.join(folder, "grid.png"))
    assert run_main("--generate", "12", "--seed", "7", "--output_dir", out)[0] == 0
    np.testing.assert_array_equal(np.load(os.path.join(folder, "digits.npy")), digits)  # --seed repeats


def test_evaluate_prints_the_metrics_table(finished_run):
    out, _ = finished_run
    code, printed, err = run_main("--evaluate", "--metrics_samples", "500", "--output_dir", out)
    assert code == 0, err[-2000:]
    for name in ["fid", "kid", "precision", "recall", "class_entropy", "min_class_share", "mean_confidence"]:
        assert any(line.split()[:1] == [name] for line in printed.splitlines()), name


def folder_digest(folder):
    """{relative path: file bytes} of every file under folder."""
    return {os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


@pytest.fixture
def finished_copy(finished_run, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(finished_run[0], out)
    return out


def test_rerunning_a_finished_run_says_it_is_there_and_changes_nothing(finished_copy):
    state = json.load(open(os.path.join(finished_copy, "checkpoint", "state.json")))
    assert state["finished"] is True and state["epoch"] == 2
    assert os.path.exists(os.path.join(finished_copy, "checkpoint", state["weights"]))  # kept to continue from
    before = folder_digest(finished_copy)
    code, out, err = run_main("--epochs", "2", *QUICK, "--metrics_every", "1", "--output_dir",
                                    finished_copy)
    assert code == 0 and err == ""
    assert "has its 2 epochs: nothing to train" in out and "--epochs" in out and "--restart" in out
    assert "data:" not in out and "Model:" not in out  # decided before loading data or building models
    assert folder_digest(finished_copy) == before
    # Fewer epochs than the run has is still refused.
    code, _, err = run_main("--epochs", "1", *QUICK, "--output_dir", finished_copy)
    assert code == 2
    for advice in ("is kept as it is", "--epochs 12", "--output_dir", "--restart"):
        assert advice in err, advice
    assert folder_digest(finished_copy) == before


def test_a_larger_epochs_continues_a_finished_run_as_one_run(finished_copy):
    """Also with another grid size (the GIF fits the frames), another learning rate and dropout switched on (said,
    and kept per span)."""
    code, printed, err = run_main("--epochs", "3", *QUICK, "--metrics_every", "1", "--metrics_samples", "500",
                                  "--grid_rows", "3", "--d_learning_rate", "2e-4", "--dropout", "0.1",
                                  "--output_dir", finished_copy)
    assert code == 0, printed[-3000:] + err[-3000:]
    assert "continuing the finished run" in printed and "after epoch 2" in printed
    assert "epoch 3/3:" in printed and "epoch 1/3:" not in printed
    assert ("epochs 1-2 were trained with other settings; from epoch 3 on: d_learning_rate 0.0004 -> 0.0002, "
            "dropout 0.0 -> 0.1") in printed
    state = json.load(open(os.path.join(finished_copy, "checkpoint", "state.json")))
    assert [(span["first_epoch"], span["D_LEARNING_RATE"], span["DROPOUT"]) for span in state["spans"]] == [
        (1, 4e-4, 0.0), (3, 2e-4, 0.1)]
    assert len(state["random_states"]) == 2  # the two dropout layers' generators, kept from now on
    # Epoch 3 trained at the new rate, dropped as the last epoch after LR_DROP_AT (Adam saves its rate with its
    # moments; the checkpoint's must not win).
    saved = train_dcgan.build_dcgan(state["config"], policy="float32",  # its variables are float32 in any policy
                                    classes=train_dcgan.GeneratorClasses(10, from_noise=True))
    saved.load_weights(os.path.join(finished_copy, "checkpoint", state["weights"]))
    assert train_dcgan.first_dropped_epoch(3, train_dcgan.LR_DROP_AT) == 3
    assert [float(saved.d_optimizer.learning_rate), float(saved.g_optimizer.learning_rate)] == pytest.approx(
        [2e-4 * train_dcgan.LR_DROP_FACTOR, 4e-4 * train_dcgan.LR_DROP_FACTOR])
    assert sorted(os.listdir(os.path.join(finished_copy, "samples"))) == [f"epoch_{e:03d}.png" for e in (1, 2, 3)]
    frames = iio.imread(os.path.join(finished_copy, "generated_images.gif"), index=None)
    assert len(frames) == 3 and frames.shape[1:3] == (10 * 30 + 2 + 20, 3 * 30 + 2)  # a row per class
    assert [row["epoch"] for row in csv_rows(os.path.join(finished_copy, "history.csv"))] == ["1", "2", "3"]
    assert [row["epoch"] for row in csv_rows(os.path.join(finished_copy, "metrics.csv"))] == ["1", "2", "3"]


def test_restart_discards_the_finished_run_and_trains_anew(finished_copy):
    os.makedirs(os.path.join(finished_copy, "generated"), exist_ok=True)
    with open(os.path.join(finished_copy, "generated", "digits.npy"), "wb") as file:
        file.write(b"--generate's output")
    code, printed, err = run_main("--epochs", "1", *QUICK, "--metrics_every", "0", "--restart", "--output_dir",
                                  finished_copy)
    assert code == 0, printed[-3000:] + err[-3000:]
    assert "discarded the earlier run" in printed and "training from scratch" in printed
    assert sorted(os.listdir(os.path.join(finished_copy, "samples"))) == ["epoch_001.png"]
    assert not os.path.exists(os.path.join(finished_copy, "metrics.csv"))
    with open(os.path.join(finished_copy, "generated", "digits.npy"), "rb") as file:
        assert file.read() == b"--generate's output"  # not a run output: kept


def test_a_gif_that_cannot_be_written_is_written_by_the_same_command_later(finished_copy):
    """Killed or failed after the last checkpoint, before the GIF: the run is finished, and the same command
    writes the GIF from its grids, training nothing."""
    path = os.path.join(finished_copy, "checkpoint", "state.json")
    gif_path = os.path.join(finished_copy, "generated_images.gif")
    os.remove(gif_path)
    os.makedirs(os.path.join(gif_path, "in_the_way"))  # the rename onto it fails, as on a full disk
    args = ["--epochs", "2", *QUICK, "--metrics_every", "1", "--output_dir", finished_copy]
    code, _, err = run_main(*args)
    assert code == 2 and "could not be written" in err and "run the same command again" in err
    assert json.load(open(path))["finished"] is True
    shutil.rmtree(gif_path)
    code, out, _ = run_main(*args)
    assert code == 0 and "nothing to train" in out
    assert len(iio.imread(gif_path, index=None)) == 2
    assert [row["epoch"] for row in csv_rows(os.path.join(finished_copy, "history.csv"))] == ["1", "2"]


def test_a_restart_that_cannot_start_keeps_the_old_run(finished_copy, monkeypatch):
    """--restart discards the old run only after everything that can fail has been checked."""
    def no_classifier(*args):
        raise train_dcgan.FixableError("the metric classifier could not be loaded (test)")

    monkeypatch.setattr(train_dcgan, "load_classifier", no_classifier)
    before = folder_digest(finished_copy)
    code, _, err = run_main("--epochs", "1", *QUICK, "--metrics_every", "1", "--restart",
                                  "--output_dir", finished_copy)
    assert code == 2 and "could not be loaded (test)" in err
    assert folder_digest(finished_copy) == before


def test_a_second_run_on_the_same_folder_stops_at_once(finished_copy):
    before = folder_digest(finished_copy)
    with train_dcgan.filelock.FileLock(os.path.join(finished_copy, ".lock")):  # as the first run holds it
        code, _, err = run_main("--epochs", "3", *QUICK, "--metrics_every", "0", "--output_dir", finished_copy)
    assert code == 2 and "another training run is using" in err and finished_copy in err
    assert folder_digest(finished_copy) == before


def test_resuming_with_another_batch_size_names_the_matching_flags(finished_copy):
    code, _, err = run_main("--epochs", "3", *QUICK, "--batch_size", "16", "--metrics_every", "0",
                                  "--output_dir", finished_copy)
    assert code == 2
    assert "BATCH_SIZE was 32, now 16" in err and "--batch_size 32" in err
    assert "--precision mixed_" in err or "--precision float32" in err


def fingerprint(log):
    return next(line.split()[-1] for line in log.splitlines() if line.startswith("generator weights fingerprint"))


def test_sigkill_then_rerun_resumes_exactly_where_it_stopped(tmp_path):
    """Killed after epoch 2 or later of 6, rerun: the outputs read as one run, and the weights end bit-identical
    to an uninterrupted run's (the input pipeline, dropout masks, optimizers and weight average all continue)."""
    run_args = ["--epochs", "5", *QUICK, "--dropout", "0.1", "--metrics_every", "2", "--metrics_samples", "200"]
    out = str(tmp_path / "out")
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "train_dcgan.py"), *run_args, "--output_dir", out],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = os.path.join(out, "checkpoint", "state.json")

    def checkpointed_epochs():
        return json.load(open(state_path))["epoch"] if os.path.exists(state_path) else 0

    deadline = time.time() + 300
    # Three epochs remain after the second: seconds of margin for a 50 ms poll, not a race with one epoch.
    while checkpointed_epochs() < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = json.load(open(state_path))
    assert state["finished"] is False and 2 <= state["epoch"] <= 4

    result = run_script(*run_args, "--output_dir", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"resuming the unfinished run in {out} after epoch {state['epoch']}" in result.stdout
    assert f"epoch {state['epoch'] + 1}/5:" in result.stdout and "epoch 1/5:" not in result.stdout
    steps = [step for step, _ in tensorboard_events(os.path.join(out, "tensorboard"))["d_loss"]]
    assert steps == sorted(set(steps)) and steps[-1] == 5  # the curves continue, no epoch twice
    assert sorted(os.listdir(os.path.join(out, "samples"))) == [f"epoch_{e:03d}.png" for e in range(1, 6)]
    assert len(iio.imread(os.path.join(out, "generated_images.gif"), index=None)) == 5

    uninterrupted = str(tmp_path / "uninterrupted")
    code, reference, err = run_main(*run_args, "--output_dir", uninterrupted)
    assert code == 0, err[-3000:]
    assert fingerprint(result.stdout) == fingerprint(reference)
    for name in ("history.csv", "metrics.csv"):
        resumed_rows, reference_rows = (csv_rows(os.path.join(folder, name)) for folder in (out, uninterrupted))
        assert [row["epoch"] for row in resumed_rows] == [row["epoch"] for row in reference_rows]
        for key in ("d_loss", "g_loss") if name == "history.csv" else ("fid", "recall"):
            assert [row[key] for row in resumed_rows] == [row[key] for row in reference_rows], (name, key)


def edit_state(output_dir, edit):
    """Rewrite the run's state.json through `edit` (a function of the state that changes it in place)."""
    path = os.path.join(output_dir, "checkpoint", "state.json")
    state = json.load(open(path))
    edit(state)
    json.dump(state, open(path, "w"))
    return state


def test_resuming_with_another_latent_dim_is_a_clear_error(finished_copy):
    edit_state(finished_copy, lambda state: state["config"].update(LATENT_DIM=64))
    code, _, err = run_main("--epochs", "3", *QUICK, "--output_dir", finished_copy)
    assert code == 2
    assert "LATENT_DIM was 64, now 128" in err and "--latent_dim 64" in err


def test_a_checkpoint_of_other_models_is_a_clear_error_and_is_kept(finished_copy):
    """A checkpoint whose weights do not fit today's models (another version of the script) stops cleanly."""
    import keras
    state = json.load(open(os.path.join(finished_copy, "checkpoint", "state.json")))
    weights = os.path.join(finished_copy, "checkpoint", state["weights"])
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(weights)
    code, _, err = run_main("--epochs", "3", *QUICK, "--metrics_every", "0", "--output_dir", finished_copy)
    assert code == 2
    assert "does not fit the models this version of the script builds" in err
    assert json.load(open(os.path.join(finished_copy, "checkpoint", "state.json"))) == state


@pytest.mark.parametrize("older", ["no spans", "no weights kept", "no NOISE_CLASS"])
def test_a_run_of_an_older_version_is_refused_in_a_sentence_but_its_generator_still_works(finished_copy, older):
    state = edit_state(finished_copy, {"no spans": lambda state: state.pop("spans"),
                                       "no weights kept": lambda state: state.update(weights=None),
                                       "no NOISE_CLASS": lambda state: state["config"].pop("NOISE_CLASS")}[older])
    code, _, err = run_main("--epochs", "3", *QUICK, "--metrics_every", "0", "--output_dir", finished_copy)
    assert code == 2 and "written by an older version of the script" in err and "--restart" in err
    assert len(err.strip().splitlines()) == 1, err  # one sentence
    assert json.load(open(os.path.join(finished_copy, "checkpoint", "state.json"))) == state  # kept as it was
    code, _, err = run_main("--generate", "10", "--output_dir", finished_copy)
    assert code == 0, err
    assert np.load(os.path.join(finished_copy, "generated", "digits.npy")).shape == (10, 28, 28, 1)


def test_generating_fewer_digits_leaves_none_of_the_earlier_ones(finished_run, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(finished_run[0], out)
    assert run_main("--generate", "20", "--output_dir", out)[0] == 0
    assert run_main("--generate", "10", "--output_dir", out)[0] == 0
    names = sorted(name for name in os.listdir(os.path.join(out, "generated")) if name.startswith("digit_"))
    assert names == [f"digit_{index:04d}.png" for index in range(10)]


def shapes_folder(folder, count, seed=0):
    """`count` 28x28 drawings of circles, squares and triangles, no digits among them."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for index in range(count):
        picture = Image.new("L", (28, 28))
        draw = ImageDraw.Draw(picture)
        x, y, size = rng.integers(4, 10), rng.integers(4, 10), rng.integers(10, 16)
        kind = index % 3
        if kind == 0:
            draw.ellipse((x, y, x + size, y + size), outline=255, width=2)
        elif kind == 1:
            draw.rectangle((x, y, x + size, y + size), outline=255, width=2)
        else:
            draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], outline=255, width=2)
        picture.save(os.path.join(folder, f"shape_{index:04d}.png"))
    return folder


def test_a_folder_of_shapes_is_measured_against_its_own_held_out_shapes(tmp_path, monkeypatch):
    """Also without the shipped MNIST: a run on the user's own images needs no MNIST at all."""
    def offline(split="train"):
        raise AssertionError("MNIST was loaded for a run on other images")

    monkeypatch.setattr(train_dcgan, "MNIST_PATH", str(tmp_path / "no_mnist.npz"))
    monkeypatch.setattr(train_dcgan, "load_keras_mnist", offline)
    folder = shapes_folder(str(tmp_path / "shapes"), 600)
    out = str(tmp_path / "out")
    code, printed, err = run_main("--data", folder, "--epochs", "1", "--steps_per_execution", "5",
                                        "--grid_rows", "4", "--metrics_every", "1", "--metrics_samples", "200",
                                        "--output_dir", out)
    assert code == 0, err[-3000:]
    assert "data: 540 training images" in printed and "60 images held out of the image folder" in printed
    assert "no class metrics" in printed and "no classes (noise class off), since the data has no labels" in printed
    assert "digit(s)" not in printed and "WARNING" not in printed and "mode collapse" not in printed
    rows = csv_rows(os.path.join(out, "metrics.csv"))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["fid"])) and rows[0]["class_entropy"] == ""
    # --evaluate scores against the same held-out shapes, and says so.
    code, printed, err = run_main("--evaluate", "--data", folder, "--metrics_samples", "200",
                                        "--output_dir", out)
    assert code == 0 and "against 60 images held out" in printed and "class_entropy" not in printed
