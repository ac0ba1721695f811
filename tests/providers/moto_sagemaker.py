"""moto's server plus the one SageMaker call moto (5.2.5) lacks: ``UpdateEndpoint``.

moto answers ``UpdateEndpoint`` with an HTTP 500 (not implemented), yet it is
the only way to change the variants of a live endpoint without taking it down.
This adds it, as AWS documents it, to moto's own SageMaker backend: the
endpoint switches to the new endpoint config, taking that config's variants
with their ``InitialVariantWeight``/``InitialInstanceCount`` (AWS's default,
``RetainAllVariantProperties=false``); the endpoint must exist, be
``InService`` and the config must exist. Everything else is moto, unchanged.

Run as ``python -m tests.providers.moto_sagemaker -H 127.0.0.1 -p PORT`` (the
same arguments as ``moto_server``). What this proves, and what it does not, is
listed in docs/providers.md ("SageMaker", limits).
"""

from __future__ import annotations

import sys
from typing import Any


def _install() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(
        self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
    ) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f"Cannot update in-progress endpoint '{endpoint.arn}'.")
        config = self.describe_endpoint_config(endpoint_config_name)  # raises if missing
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.last_modified_time = utcnow()
        return str(endpoint.arn)

    def update_endpoint_response(self: SageMakerResponse) -> ActionResult:
        arn = update_endpoint(
            self.sagemaker_backend,
            self._get_param("EndpointName"),
            self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    setattr(SageMakerModelBackend, "update_endpoint", update_endpoint)  # noqa: B010
    setattr(SageMakerResponse, "update_endpoint", update_endpoint_response)  # noqa: B010


def main(argv: list[str] | None = None) -> Any:
    from moto.server import main as moto_main

    _install()
    return moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
