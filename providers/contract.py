"""Deprecated home of the provider contract: it is the top-level ``contract`` package now.

Plugins written against ``providers.contract`` keep working through this re-export; new code
imports ``contract``.
"""

from contract import *  # noqa: F403
