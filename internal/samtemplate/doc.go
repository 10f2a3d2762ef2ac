// Package samtemplate holds the tests of the SAM application at the repository
// root: template.yaml (least-privilege policies, encryption, alarms, schedule,
// failure handling, partition-neutral ARNs, the optional permissions for other
// accounts, cfn-lint), member-role.yaml (the role in member accounts: trust, exact
// permissions, StackSet readiness, cfn-lint), samconfig.toml, the sample
// invoke payloads in events/, and the build-DriftCheckFunction target that
// `sam build` calls. It has no code outside its tests.
package samtemplate
