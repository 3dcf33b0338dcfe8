"""tf_keras inference model -> TFLite bytes in one of four quantization modes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from train.keras_env import tf

MODES = ("float32", "float16", "dynamic", "int8")


class ConversionError(RuntimeError):
    pass


def convert(model, mode: str, representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
            int8_fallback: bool = False) -> bytes:
    """Builtin ops only (no Flex): a model that needs more fails here, not on the device."""
    if mode not in MODES:
        raise ConversionError(f"unknown quantization {mode!r}; choose from {', '.join(MODES)}")
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "float32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        c.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        # per-channel dense quantization emits FULLY_CONNECTED v12, which tflite-runtime 2.14 rejects
        c._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif mode == "int8":
        if representative is None:
            raise ConversionError("int8 needs a representative dataset")
        c.representative_dataset = representative
        if int8_fallback:
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        else:
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            c.inference_input_type = tf.int8
            c.inference_output_type = tf.int8
    try:
        return c.convert()
    except Exception as exc:  # the converter raises many types; the message is what matters
        hint = " (full-integer conversion failed; --int8-fallback allows float ops)" if mode == "int8" else ""
        raise ConversionError(f"TFLite conversion ({mode}) failed{hint}: {str(exc).splitlines()[0][:300]}") from None
