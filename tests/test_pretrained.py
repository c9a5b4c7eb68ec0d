"""The committed pretrained generator: it matches today's architecture and works on a fresh clone."""
import os

import keras
import numpy as np
import tensorflow as tf

import train_dcgan
from conftest import epoch_outputs, run_main


def test_pretrained_generator_has_the_current_architecture():
    pretrained = keras.models.load_model(train_dcgan.PRETRAINED_GENERATOR_PATH)
    mnist_classes = train_dcgan.run_classes([str(digit) for digit in range(10)], train_dcgan.DEFAULT_CONFIG)
    current = train_dcgan.build_generator(train_dcgan.LATENT_DIM, train_dcgan.G_CHANNELS, mnist_classes)
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
    assert sorted(os.listdir(tmp_path / "outputs")) == [train_dcgan.OUTPUTS_RECORD, "generated"]


def assert_float32_and_converts_to_tflite(generator):
    """Every layer computes in float32, and TFLite's conversion draws the digits Keras draws. (Input layers compute
    nothing; they take the loading process's policy.)"""
    computing = [layer for layer in generator.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert {layer.dtype_policy.name for layer in computing} == {"float32"}
    converter = tf.lite.TFLiteConverter.from_keras_model(generator)
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    noise = train_dcgan.fixed_noise(0, 1, train_dcgan.latent_dim_of(generator))
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], noise)
    interpreter.invoke()
    drawn = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(drawn, np.asarray(generator(noise)), atol=1e-5)


def test_the_committed_generator_computes_in_float32_and_converts_to_tflite():
    assert_float32_and_converts_to_tflite(keras.models.load_model(train_dcgan.PRETRAINED_GENERATOR_PATH))


def test_a_generator_trained_in_bfloat16_is_saved_in_float32(tiny_config, tmp_path):
    noise_classes = train_dcgan.GeneratorClasses(10, from_noise=True)
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, PRECISION="mixed_bfloat16"), classes=noise_classes)
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in dcgan.ema_generator.layers}
    outputs = epoch_outputs(tmp_path)
    outputs.set_model(dcgan)
    outputs.write_models()
    saved = keras.models.load_model(os.path.join(tmp_path, "generator.keras"))
    assert train_dcgan.weights_fingerprint(saved) == train_dcgan.weights_fingerprint(dcgan.ema_generator)
    assert_float32_and_converts_to_tflite(saved)
