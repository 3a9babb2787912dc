"""Talking video: a face photo and a speech track become a speaking clip, as two stages (LTX-2 image-to-video,
then Wav2Lip on its output), each run as a job on its own model's queue."""
