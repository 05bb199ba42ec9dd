"""Reading frames: capture files, live capture, link-layer decoding."""
