# conftest / OPA policy over `mlx plan --json` — the same rules you write for Terraform plans.
#
#   mlx plan --json > plan.json
#   conftest test --policy examples/policy plan.json
#
# tests/e2e/test_release.py evaluates the same rule in Python against real mlx output.
package main

import rego.v1

protected_types := {"models", "rollouts"}

deny contains msg if {
	rc := input.resource_changes[_]
	protected_types[rc.type]
	"delete" in rc.change.actions
	msg := sprintf("%s would be deleted: deleting models and rollouts needs a separate, reviewed change", [rc.address])
}

warn contains msg if {
	rc := input.resource_changes[_]
	rc.type == "datasets"
	rc.action_reason == "update_because_content_changed_outside_spec"
	msg := sprintf("%s: its bytes changed while its spec did not", [rc.address])
}

warn contains msg if {
	gate := input.mlx.gates[_]
	msg := sprintf("gate %s will run before release", [gate.address])
}
