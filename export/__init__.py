"""Workstation export: tf_keras model -> TFLite bundle checked in the device runtimes."""
