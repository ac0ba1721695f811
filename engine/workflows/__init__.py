"""Workflows built on plan and apply: saved plans, rollback and promotion (``release``), the
spec a state version recorded (``stored_spec``), and driving rollouts after an apply
(``rollouts``)."""
