"""On-device speaker verification runtime: light by design (numpy, python_speech_features,
a TFLite interpreter, sounddevice, soundfile, sqlite3). Never imports tensorflow, librosa,
train/, export/ or app/."""
