"""The committed pretrained generator: it matches today's architecture and works on a fresh clone."""
import os

import keras
import numpy as np

import train_dcgan
from conftest import run_main


def test_pretrained_generator_has_the_current_architecture():
    pretrained = keras.models.load_model(train_dcgan.PRETRAINED_GENERATOR_PATH)
    current = train_dcgan.build_generator(train_dcgan.LATENT_DIM, train_dcgan.G_CHANNELS)
    assert [type(layer).__name__ for layer in pretrained.layers] == [type(layer).__name__ for layer in current.layers]
    assert [w.shape for w in pretrained.weights] == [w.shape for w in current.weights]
    assert pretrained.input_shape == current.input_shape and pretrained.output_shape == current.output_shape


def test_pretrained_generate_and_evaluate_need_no_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as on a fresh clone: no outputs/ yet
    code, _, err = run_main("--generate", "20", "--pretrained")
    assert code == 0, err[-2000:]
    digits = np.load(tmp_path / "outputs" / "generated" / "digits.npy")
    assert digits.shape == (20, 28, 28, 1) and digits.std() > 0.1  # digits, not a blank or constant image
    code, printed, err = run_main("--evaluate", "--pretrained", "--metrics_samples", "1000")
    assert code == 0, err[-2000:]
    fid = next(float(line.split()[1]) for line in printed.splitlines() if line.split()[:1] == ["fid"])
    assert fid < 30  # a trained generator (an untrained one scores above 300)
    assert sorted(os.listdir(tmp_path / "outputs")) == ["generated"]
