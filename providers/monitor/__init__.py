"""The ``monitor`` provider (issue 21): drift monitors, profiled once per reference
fingerprint (:mod:`.reference`) and judged from counts (:mod:`.judge`); the other monitor
types are run by the modules ``provider.RUNNERS`` names."""
