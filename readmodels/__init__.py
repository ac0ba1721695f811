"""Read models over the state and the inference log: what `mlx history`, `show`, `diff` and
`rollout status` print, as data (the renderers in ``cli.render`` make text of it), and what
the dashboard will read. They read; they never plan or apply.

(Not named ``inspect``: a top-level package of that name would hide the standard library's.)
"""
