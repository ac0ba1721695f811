"""The MLflow provider (``type: mlflow``): models and prompts in an MLflow registry.

Needs the ``mlflow`` extra (``pip install 'mlxctl[mlflow]'``); mlflow is imported
only when a registry call is made, never at module level.
"""
