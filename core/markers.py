"""pluggy markers of the ``bioscale`` project.

Rule and observer authors decorate their hook methods with ``bioscale.hookimpl``.
"""

import pluggy

PROJECT_NAME = "bioscale"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
