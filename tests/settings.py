"""The test run's settings: the project's, on a developer machine's defaults unless the environment says otherwise.

DEBUG=1 lets the tests use the development SECRET_KEY and plain HTTP (the live
server and the browser tests); tests of the production defaults start a process
of their own without it. The processes the tests start (call core, ingest) load
the project's settings with this same environment.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ["DJANGO_SETTINGS_MODULE"] = "softswitch_portal.settings"

from softswitch_portal.settings import *  # noqa: E402, F403
