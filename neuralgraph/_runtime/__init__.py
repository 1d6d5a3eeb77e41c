"""The engine that runs a compiled plan block by block, offline or inside a backend's callback,
and the command ring that carries parameter changes and MIDI into the audio thread."""
