"""What the control plane publishes and the gateway reads: the route document of each served
endpoint (``route``: its typed shape, which the gateway provider writes and ``mlx serve``
parses) and the table that holds them in the state database (``table``). Budgets' shared
counters will live here too. Below the gateway and the providers; above ``common`` and
``state``."""
