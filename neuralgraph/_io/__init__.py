"""The outside world: the audio backends' protocol and callback adapter, audio and MIDI files, OSC."""
