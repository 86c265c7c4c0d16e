"""Runtime hook: runs inside the frozen app before ``main.py``.

- A windowed build (Windows, macOS) has no console: ``sys.stdout``/``sys.stderr`` are None and
  the first ``print`` or log line would raise. They go to ``<user data>/logs/output.log``.
- Hugging Face libraries (only in the torch variant) must never try the network.
- The Qt WebEngine sandbox flag (``--no-sandbox`` as root only) is NOT set here: the app sets
  it at start in ``backend.gui.app.prepare_environment``, frozen or not.
"""

import os

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "1")

from backend.gui.crash import redirect_missing_stdio  # noqa: E402 (after the environment)

redirect_missing_stdio()
