"""The embedded gateway's control plane (``type: gateway``, the default of ``endpoints``).

``provider`` (the ``Provider`` and ``Serving`` the engine calls), ``routes`` (the route
document ``mlx serve`` reads, as pure functions), ``settings`` (an endpoint's spec into the
document's settings), ``variants`` (a served version into a document entry), ``artifacts``
(the content-addressed copies models are loaded from) and ``metrics`` (per-role traffic from
the inference log). The document's shape is in ``docs/gateway.md``.
"""
