"""LTX-2 text- and image-to-video through diffusers."""
