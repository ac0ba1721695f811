# conftest / OPA policy over `mlx plan --json`: every resource the plan leaves in place has an
# owner — written as it is for Terraform plans, over resource_changes[].change.after.
#
#   mlx plan --json > plan.json
#   conftest test --policy examples/policy plan.json
#   opa eval -d examples/policy -i plan.json 'data.main.deny'
#
# An unchanged resource (actions ["no-op"]) carries its whole object in `after`, as
# Terraform's does, so it is judged like any other. tests/test_plan_json_policy.py runs it.
package main

import rego.v1

deny contains msg if {
	rc := input.resource_changes[_]
	rc.change.actions != ["delete"] # a deleted resource needs no owner
	not has_owner(rc.change.after)
	msg := sprintf("%s has no owner", [rc.address])
}

# The same rule over planned_values (every resource as it will be once applied), for the
# tools that read that part instead (Checkov, Infracost).
missing_owner_planned contains r.address if {
	r := input.planned_values.root_module.resources[_]
	not has_owner(r.values)
}

has_owner(obj) if {
	is_string(obj.owner)
	obj.owner != ""
}
