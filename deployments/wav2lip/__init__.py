"""Wav2Lip lip-sync: the official network re-implemented, batched, with in-process media I/O."""
