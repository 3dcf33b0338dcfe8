"""The status page: `streamlit run app/status.py [-- --store P --model D --config F]`.

Anyone on the LAN sees health and live decisions and can try a recording; enrolling, deleting,
the threshold policy and profile import/export need the device's admin password.
"""

import sys
from pathlib import Path

# `streamlit run` puts app/ (not the repository) on sys.path; the page imports app.* and device.*.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.page import main  # noqa: E402

main(sys.argv[1:])
