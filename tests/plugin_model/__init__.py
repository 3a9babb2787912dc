"""A third model, for tests only: served through the same catalogue as LTX-2 and Wav2Lip, with no change to
serve_app/. `flipbook` turns one still image into a short clip of `frames` frames, each a step brighter."""
