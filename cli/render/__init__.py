"""The text the CLI prints of a read model (``readmodels``): ``mlx history``, ``show``,
``diff``, ``rollout status``. Above the read models, which stay data (``--json`` prints them
as they are; the dashboard will read the same data); the plan's own renderers stay in
``engine.render``, whose table and value helpers these use.
"""
