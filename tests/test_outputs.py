"""Sample grids, the GIF, atomic writes, CSV rows."""
import math
import os

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import train_dcgan
from conftest import epoch_outputs


def test_the_epochs_sample_grid_is_written(tiny_config, tmp_path):
    outputs = epoch_outputs(tmp_path)
    outputs.set_model(train_dcgan.build_dcgan(tiny_config))
    outputs.write_grid(3)
    with Image.open(tmp_path / "samples" / "epoch_003.png") as grid:
        assert grid.size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 digits of 28 px, 2 px apart
    assert not [name for name in os.listdir(tmp_path / "samples") if name.startswith(".tmp")]


def test_gif_has_one_frame_per_epoch_in_order(tmp_path):
    samples = str(tmp_path / "samples")
    for epoch in range(1, 6):
        images = np.full((4, 28, 28, 1), epoch / 10, dtype=np.float32)
        train_dcgan.save_grid_png(images, train_dcgan.sample_path(samples, epoch))
    train_dcgan.save_grid_png(np.ones((4, 28, 28, 1), np.float32), train_dcgan.sample_path(samples, 6))
    gif = str(tmp_path / "generated_images.gif")
    train_dcgan.write_training_gif(str(tmp_path), 5, 0.1)
    frames = iio.imread(gif, index=None)
    assert len(frames) == 5  # epoch 6's grid is not part of a 5-epoch run
    digit_brightness = [frame[..., 0][30:50, 10:30].mean() if frame.ndim == 3 else frame[30:50, 10:30].mean()
                        for frame in frames]
    assert digit_brightness == sorted(digit_brightness) and len(set(digit_brightness)) == 5
    # The epoch number is drawn in the banner above the grid.
    assert all(frame[:20].max() > 200 for frame in frames)


def test_atomic_output_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with train_dcgan.atomic_output(str(path)) as temp_path:
            with open(temp_path, "w") as file:
                file.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_csv_rows_round_trip_and_cut_at_the_resumed_epoch(tmp_path):
    path = str(tmp_path / "history.csv")
    rows = [{"epoch": e, "d_loss": 0.5, "g_loss": 1.0 + e, "d_real": 0.6, "d_fake": 0.4, "images_per_s": 700.0,
             "epoch_seconds": 80.0 + e} for e in (1, 2, 3)]
    train_dcgan.write_csv(path, train_dcgan.HISTORY_COLUMNS, rows)
    assert train_dcgan.read_csv_rows(path, 2) == rows[:2]


def test_an_older_history_without_the_time_columns_still_resumes(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss,d_real,d_fake\n1,0.5,1.0,0.6,0.4\n")
    rows = train_dcgan.read_csv_rows(str(path), 1)
    assert rows[0]["d_loss"] == 0.5
    assert math.isnan(train_dcgan.training_minutes(rows))  # unknown, not a wrong number
    assert train_dcgan.training_minutes([{"epoch_seconds": 90.0}, {"epoch_seconds": 30.0}]) == 2.0


def line_colours(path, left, right):
    """How many pixels of matplotlib's first two line colours (blue C0, orange C1) lie between x = left and right."""
    with Image.open(path) as plot:
        pixels = np.asarray(plot.convert("RGB"), dtype=int)[:, left:right]
    return [int((np.abs(pixels - colour).sum(-1) < 60).sum()) for colour in ((31, 119, 180), (255, 127, 14))]


def test_loss_plot_draws_both_losses_and_both_scores(tmp_path):
    rows = [{"epoch": e, "d_loss": 0.5, "g_loss": 1.0 + e, "d_real": 0.6, "d_fake": 0.4} for e in (1, 2, 3)]
    path = str(tmp_path / "losses.png")
    train_dcgan.plot_losses(rows, path)
    with Image.open(path) as plot:
        assert plot.size == (1000, 400)
    for left, right in ((0, 500), (500, 1000)):  # losses on the left, D's scores on the right
        blue, orange = line_colours(path, left, right)
        assert blue > 100 and orange > 100  # a line (and its legend entry) for each of the two curves


def test_gif_frames_of_another_grid_size_are_fitted(tmp_path):
    """GRID_ROWS changed when a run continued: its grids differ in size; the GIF fits them, it does not fail."""
    samples = str(tmp_path / "samples")
    train_dcgan.save_grid_png(np.full((16, 28, 28, 1), 0.5, np.float32), train_dcgan.sample_path(samples, 1))
    train_dcgan.save_grid_png(np.full((9, 28, 28, 1), 0.9, np.float32), train_dcgan.sample_path(samples, 2))
    gif = str(tmp_path / "generated_images.gif")
    train_dcgan.write_training_gif(str(tmp_path), 2, 0.1)
    frames = iio.imread(gif, index=None)
    assert len(frames) == 2 and frames.shape[1:3] == (3 * 30 + 2 + 20, 3 * 30 + 2)  # the last grid's size
