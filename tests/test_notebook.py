"""The notebook, executed headless top to bottom in a Jupyter kernel with a small setting, and the script called
from Python as a notebook calls it: settings by keyword, the kernel's own command line ignored, nothing global
left changed."""
import json
import os
import shutil
import subprocess
import sys

import nbformat

import train_dcgan
from conftest import REPO

NOTEBOOK = os.path.join(REPO, "train_dcgan.ipynb")
SMALL = {"EPOCHS": 2, "MAX_TRAIN_IMAGES": 256, "METRICS_SAMPLES": 200, "OUTPUT_DIR": "outputs"}


def notebook_beside_a_copy_of_the_code(folder):
    """The notebook in `folder` with the script and its files beside it, as in a clone; its settings made small."""
    for name in ["train_dcgan.py", "requirements.txt"]:
        shutil.copy(os.path.join(REPO, name), folder)
    for name in ["data", "pretrained"]:
        os.symlink(os.path.join(REPO, name), os.path.join(folder, name))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    settings = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    for name, value in SMALL.items():
        assert f"\n{name} = " in f"\n{settings.source}", name  # the cell still sets it
    settings.source += "\n" + "\n".join(f"{name} = {value!r}" for name, value in SMALL.items())
    # After the notebook: training left Keras' precision policy and the notebook's plotting backend as they were.
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import keras, matplotlib\n"
        "print('after:', keras.mixed_precision.global_policy().name, matplotlib.get_backend())"))
    return notebook


def test_the_notebook_runs_top_to_bottom_in_a_kernel(tmp_path):
    from nbclient import NotebookClient
    notebook = notebook_beside_a_copy_of_the_code(tmp_path)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                   allow_errors=False).execute()  # raises on the first cell that fails

    def outputs(fragment):
        cell = next(cell for cell in notebook.cells if cell.cell_type == "code" and fragment in cell.source)
        return cell.outputs

    def text(fragment):
        return "".join(output.get("text", "") for output in outputs(fragment))

    training = outputs("status = train_dcgan.main(")
    printed = text("status = train_dcgan.main(")
    assert "precision: " in printed and "data: 256 training images" in printed
    assert "━" in printed and "epoch 1/2:" not in printed  # Keras' progress bar, not the plain log of a file
    assert any("image/png" in output.get("data", {}) for output in training)  # the epoch's grid, shown
    assert "fid " in text("metrics.csv") and "recall " in text("metrics.csv")
    assert sum("image/png" in output.get("data", {}) for output in outputs("generate=20")) == 1
    after = text("print('after:'").split()
    assert after[1] == "float32" and "inline" in after[2]
    assert os.path.exists(tmp_path / "outputs" / "generated_images.gif")
    assert os.path.exists(tmp_path / "outputs" / "one_digit" / "generated" / "grid.png")


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(not cell.outputs and cell.execution_count is None for cell in code_cells)
    assert all(cell.source.strip() for cell in notebook.cells)


def test_main_in_a_kernel_ignores_the_kernels_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-0123.json"])
    code = train_dcgan.main(generate=3, pretrained=True, output_dir=str(tmp_path / "out"))
    assert code == 0, capsys.readouterr().err
    assert train_dcgan.parse_config([])[0] == train_dcgan.DEFAULT_CONFIG  # main() alone: the defaults


def test_keyword_settings_are_the_flags_and_an_unknown_one_is_refused(tmp_path, capsys):
    parser = train_dcgan.build_arg_parser()
    settings = {"epochs": 2, "pretrained": True, "restart": False, "noise_class": False}
    assert train_dcgan.keyword_flags(parser, settings) == [
        "--epochs", "2", "--pretrained", "--noise_class", "False"]
    code = train_dcgan.main(epochs=1, batch_size=0, output_dir=str(tmp_path / "out"))
    assert code == 2 and "--batch_size must be at least 1" in capsys.readouterr().err
    code = train_dcgan.main(epoch=1, output_dir=str(tmp_path / "out"))
    assert code == 2 and "unrecognized arguments: --epoch 1" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


def test_training_leaves_the_callers_precision_policy_and_plotting_backend_as_they_were(tmp_path):
    code = ("import matplotlib\nmatplotlib.use('svg')\n"
            "import keras\nkeras.mixed_precision.set_global_policy('float32')\n"
            f"import sys; sys.path.insert(0, {REPO!r}); import train_dcgan\n"
            f"status = train_dcgan.main(epochs=1, max_train_images=64, metrics_every=0, grid_rows=2, "
            f"steps_per_execution=2, precision='mixed_bfloat16', output_dir={str(tmp_path / 'out')!r})\n"
            "print('after:', status, keras.mixed_precision.global_policy().name, matplotlib.get_backend())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "after: 0 float32 svg"
    assert "mixed_bfloat16" in json.load(open(tmp_path / "out" / "checkpoint" / "state.json"))["policy"]
