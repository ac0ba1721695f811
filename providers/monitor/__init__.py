"""The ``monitor`` provider (issue 21): data-drift monitors, profiled once per reference
fingerprint (:mod:`.reference`) and judged from counts (:mod:`.judge`).

Not registered yet: ``engine.load.availability`` still refuses every monitor, because the
apply/refresh/alert wiring is not finished (docs/decisions.md, "Issue 21: monitors").
"""
