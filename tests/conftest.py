"""Shared pytest configuration: hypothesis profiles.

"ci" (the default) keeps the whole suite quick; HYPOTHESIS_PROFILE=dev hunts longer.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("dev", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
