"""The release rules that plan and apply both read: what a release requires (gate verdicts
bound to fingerprints, ``evidence``) and what users get now (``released``)."""
