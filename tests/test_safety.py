"""The script removes or overwrites only files it wrote itself, and starts cleanly however it is started."""
import os
import subprocess
import sys

import pytest

import train_dcgan
from conftest import REPO, run_main

QUICK = ["--max_train_images", "128", "--steps_per_execution", "2", "--grid_rows", "2", "--metrics_every", "0"]
# A user's own files in every folder a run or an action writes into, under names the script never uses.
THEIRS = ["notes.txt", "checkpoint/my_model.ckpt", "samples/holiday.png", "tensorboard/mine.txt",
          "generated/mine.png"]
# A user's own files under the names of the script's outputs.
SAME_NAMES = ["history.csv", "metrics.csv", "losses.png", "metrics.png", "generator.keras", "discriminator.keras",
              "real_samples.png", "classes.json", "models.txt", "generated_images.gif", "samples/epoch_001.png",
              "checkpoint/epoch_001.weights.h5", "generated/grid.png", "generated/digit_0000.png",
              "generated/digits.npy", "interpolation.gif"]


def put_files(folder, names):
    for name in names:
        path = os.path.join(folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(f"the user's own {name}".encode())


def contents(folder, names):
    result = {}
    for name in names:
        with open(os.path.join(folder, *name.split("/")), "rb") as file:
            result[name] = file.read()
    return result


@pytest.mark.parametrize("command", [
    ["--epochs", "1", *QUICK],
    ["--epochs", "1", *QUICK, "--restart"],
    ["--generate", "3"],
    ["--interpolate", "--interpolation_frames", "2", "--grid_rows", "2"],
])
def test_files_of_the_outputs_names_that_the_script_did_not_write_stop_it_before_it_touches_anything(
        tmp_path, command):
    out = str(tmp_path / "out")
    put_files(out, THEIRS + SAME_NAMES)
    before = contents(out, THEIRS + SAME_NAMES)
    generator = ["--pretrained"] if command[0] in ("--generate", "--interpolate") else []
    code, printed, err = run_main(*command, *generator, "--output_dir", out)
    assert code == 2 and "which this script did not write and would overwrite" in err, printed + err
    assert "Your files were left as they were" in err and len(err.strip().splitlines()) == 1
    assert contents(out, THEIRS + SAME_NAMES) == before
    assert not os.path.exists(os.path.join(out, train_dcgan.OUTPUTS_RECORD))


def test_restart_in_a_folder_without_a_run_removes_nothing(tmp_path):
    """The review's case: --restart in a folder holding no run but the user's checkpoint/, samples/, history.csv."""
    out = str(tmp_path / "out")
    put_files(out, ["checkpoint/my_model.ckpt", "samples/holiday.png", "tensorboard/mine.txt"])
    code, printed, err = run_main("--epochs", "1", *QUICK, "--restart", "--output_dir", out)
    assert code == 0, err[-3000:]
    assert "discarded" not in printed
    assert contents(out, ["checkpoint/my_model.ckpt", "samples/holiday.png", "tensorboard/mine.txt"]) == {
        name: f"the user's own {name}".encode()
        for name in ["checkpoint/my_model.ckpt", "samples/holiday.png", "tensorboard/mine.txt"]}


def test_the_users_files_beside_a_run_survive_resume_continue_restart_and_every_action(tmp_path):
    out = str(tmp_path / "out")
    code, _, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    put_files(out, THEIRS)
    before = contents(out, THEIRS)
    commands = [["--epochs", "2", *QUICK],  # continues the finished run
                ["--epochs", "2", *QUICK],  # finished: rewrites its GIF only
                ["--generate", "4"], ["--generate", "2"],  # the second replaces the first's digits
                ["--interpolate", "--interpolation_frames", "2", "--grid_rows", "2"],
                ["--evaluate", "--max_train_images", "128", "--metrics_samples", "100"],
                ["--epochs", "1", *QUICK, "--restart"]]
    for command in commands:
        code, printed, err = run_main(*command, "--output_dir", out)
        assert code == 0, (command, printed[-2000:] + err[-2000:])
        assert contents(out, THEIRS) == before, command
    assert sorted(os.listdir(os.path.join(out, "generated"))) == ["digit_0000.png", "digit_0001.png", "digits.npy",
                                                                 "grid.png", "labels.npy", "mine.png"]
    # --restart removed the earlier run's second epoch, and kept what the actions wrote.
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["epoch_001.png", "holiday.png"]
    assert sorted(os.listdir(os.path.join(out, "checkpoint"))) == ["epoch_001.weights.h5", "my_model.ckpt",
                                                                  "state.json"]
    assert os.path.exists(os.path.join(out, "interpolation.gif"))


def test_a_run_keeps_only_its_last_epochs_weights_and_records_every_file_it_wrote(tmp_path):
    out = str(tmp_path / "out")
    code, _, err = run_main("--epochs", "3", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    assert sorted(os.listdir(os.path.join(out, "checkpoint"))) == ["epoch_003.weights.h5", "state.json"]
    written = {os.path.relpath(os.path.join(root, name), out).replace(os.sep, "/")
               for root, _, names in os.walk(out) for name in names} - {".lock", train_dcgan.OUTPUTS_RECORD}
    assert written <= train_dcgan.recorded_outputs(out)  # --restart could remove each of them


def test_continuing_onto_a_users_file_of_a_later_epochs_name_stops_first(tmp_path):
    out = str(tmp_path / "out")
    code, _, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    put_files(out, ["samples/epoch_003.png"])
    state = open(os.path.join(out, "checkpoint", "state.json"), "rb").read()
    code, _, err = run_main("--epochs", "3", *QUICK, "--output_dir", out)
    assert code == 2 and "samples/epoch_003.png, which this script did not write" in err
    assert contents(out, ["samples/epoch_003.png"])["samples/epoch_003.png"] == b"the user's own samples/epoch_003.png"
    assert open(os.path.join(out, "checkpoint", "state.json"), "rb").read() == state  # the run itself untouched


def test_a_run_from_before_the_record_owns_its_files(tmp_path):
    """A run written by the version before the record (no record file) resumes, and --restart discards it."""
    out = str(tmp_path / "out")
    code, _, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    os.remove(os.path.join(out, train_dcgan.OUTPUTS_RECORD))
    put_files(out, ["samples/holiday.png"])
    code, printed, err = run_main("--epochs", "2", *QUICK, "--output_dir", out)
    assert code == 0 and "continuing the finished run" in printed, err[-3000:]
    code, printed, err = run_main("--epochs", "1", *QUICK, "--restart", "--output_dir", out)
    assert code == 0 and "discarded the earlier run" in printed, err[-3000:]
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["epoch_001.png", "holiday.png"]


def test_killed_writes_are_cleaned_up_only_where_they_are_the_scripts(tmp_path):
    out = str(tmp_path / "out")
    code, _, err = run_main("--epochs", "1", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    put_files(out, ["checkpoint/.tmp-123-epoch_002.weights.h5", "checkpoint/.tmp-mine.txt", ".tmp-77-history.csv",
                    ".tmp-77-notes.txt"])
    code, _, err = run_main("--epochs", "2", *QUICK, "--output_dir", out)
    assert code == 0, err[-3000:]
    left = {name for name in os.listdir(out) + os.listdir(os.path.join(out, "checkpoint")) if name.startswith(".tmp")}
    assert left == {".tmp-mine.txt", ".tmp-77-notes.txt"}


# ------------------------------------------------------------------------------------------------------------------
# Starting: no process at import, closed standard streams, Ctrl+C
# ------------------------------------------------------------------------------------------------------------------
def test_importing_the_module_starts_no_process():
    # The libraries first: h5py's own import asks `uname -p` (platform.processor()); that is not this module's.
    code = ("import subprocess, os, tensorflow, keras, h5py, matplotlib.figure, scipy.linalg, filelock, imageio.v3\n"
            "def refuse(*args, **kwargs): raise AssertionError('a process was started')\n"
            "subprocess.Popen = refuse; os.fork = refuse; os.posix_spawn = refuse\n"
            f"import sys; sys.path.insert(0, {REPO!r}); import train_dcgan\n"
            "print('imported', os.environ.get('TF_CPP_MIN_LOG_LEVEL'), os.environ.get('KERAS_BACKEND'))\n")
    env = {name: value for name, value in os.environ.items() if name not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    env["PYTHONPATH"] = REPO
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["imported", "None", "None"]  # the environment is as it was


def test_help_with_stderr_closed_and_training_with_stdout_closed(tmp_path):
    script = os.path.join(REPO, "train_dcgan.py")
    result = subprocess.run(f'"{sys.executable}" "{script}" --help 2>&-', shell=True, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "--epochs" in result.stdout
    out = str(tmp_path / "out")
    result = subprocess.run(f'"{sys.executable}" "{script}" --epochs 1 {" ".join(QUICK)} --output_dir "{out}" >&-',
                            shell=True, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(os.path.join(out, "generator.keras"))


def test_ctrl_c_before_the_first_epoch_says_where_things_stand(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_dcgan, "build_quality_evaluator", interrupted)  # Ctrl+C while the floor is computed
    code, printed, err = run_main("--epochs", "1", *QUICK, "--metrics_every", "1", "--output_dir",
                                  str(tmp_path / "out"))
    assert code == 130 and "interrupted; no epoch had finished; run the same command again" in printed
    assert "Traceback" not in printed + err
    assert train_dcgan.keras.mixed_precision.global_policy().name == "float32"  # as before the call


def test_ctrl_c_while_tensorflow_loads_is_one_line(tmp_path):
    """A stand-in tensorflow that takes its time to load, and Ctrl+C (SIGINT) meanwhile."""
    import signal
    import time
    fake = tmp_path / "slow" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import time\ntime.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=str(fake.parent))
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "train_dcgan.py"), "--help"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # well inside the minute the stand-in sleeps
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted while TensorFlow was loading; nothing was written." in err and "Traceback" not in err + out
