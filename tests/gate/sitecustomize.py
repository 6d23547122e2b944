"""Test-only: put on PYTHONPATH, every Python process of a run (driver and pool workers)
reads the photo named ``$PREP_TEST_GATE`` only once the file ``$PREP_TEST_GATE.open`` exists,
and marks its arrival there with ``$PREP_TEST_GATE.reached``: a test can stop a run at a
moment it knows, with that item in progress."""

import os

_gate = os.environ.get("PREP_TEST_GATE")
if _gate:
    import time

    import prep.images as _images

    _read = _images.read_image

    def read_image(path, *args, **kwargs):
        if os.path.basename(str(path)) == os.path.basename(_gate):
            open(_gate + ".reached", "w").close()
            while not os.path.exists(_gate + ".open"):
                time.sleep(0.02)
        return _read(path, *args, **kwargs)

    _images.read_image = read_image
