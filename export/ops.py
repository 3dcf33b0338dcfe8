"""Op names and versions read from a .tflite flatbuffer, and the gate against the oldest
runtime the device supports (tflite-runtime 2.14)."""

from __future__ import annotations

from tensorflow.lite.python import schema_py_generated as schema

# Highest op version tflite-runtime 2.14 registers, for the ops this model family emits
# (measured: each loads in the 2.14 venv; FULLY_CONNECTED v12 from per-channel dense
# quantization does not).
TFLITE_2_14_MAX = {
    "CONV_2D": 6, "DEPTHWISE_CONV_2D": 6, "FULLY_CONNECTED": 11, "UNIDIRECTIONAL_SEQUENCE_LSTM": 4,
    "MAX_POOL_2D": 3, "MEAN": 3, "SUM": 2, "RESHAPE": 1, "EXPAND_DIMS": 1, "SQUEEZE": 1, "MUL": 7, "ADD": 4,
    "RSQRT": 2, "SQRT": 1, "MAXIMUM": 4, "L2_NORMALIZATION": 2, "QUANTIZE": 3, "DEQUANTIZE": 5, "RELU": 3,
    "PAD": 4, "SQUARE": 1, "DIV": 2, "SUB": 3, "TRANSPOSE": 6, "STRIDED_SLICE": 8, "CONCATENATION": 4,
}
FORBIDDEN = {"WHILE": "the LSTM became a WHILE loop instead of a fused UNIDIRECTIONAL_SEQUENCE_LSTM",
             "CUSTOM": "the model needs custom/Flex ops the device runtimes do not have"}

_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


class OpGateError(RuntimeError):
    """The model uses an op the device runtimes cannot run."""


def read_ops(tflite: bytes) -> list[dict]:
    """[{name, version}] for every operator code in the model."""
    model = schema.Model.GetRootAs(tflite, 0)
    ops = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _NAMES.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode()}"
        ops.append({"name": name, "version": int(code.Version())})
    return sorted(ops, key=lambda o: (o["name"], o["version"]))


def check_ops(ops: list[dict]) -> None:
    """Raise OpGateError naming every op the 2.14 runtime would refuse."""
    problems = []
    names = {o["name"] for o in ops}
    for o in ops:
        base = o["name"].split(":")[0]
        if base in FORBIDDEN:
            problems.append(f"{o['name']}: {FORBIDDEN[base]}")
        elif base in TFLITE_2_14_MAX and o["version"] > TFLITE_2_14_MAX[base]:
            problems.append(f"{o['name']} v{o['version']} is newer than tflite-runtime 2.14 loads "
                            f"(max v{TFLITE_2_14_MAX[base]})")
    if "UNIDIRECTIONAL_SEQUENCE_LSTM" not in names:
        problems.append("no fused UNIDIRECTIONAL_SEQUENCE_LSTM in the model (build it with tf_keras, batch 1)")
    if problems:
        raise OpGateError("export refused: " + "; ".join(problems))
