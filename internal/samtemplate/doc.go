// Package samtemplate holds the tests of the SAM application at the repository
// root: template.yaml (the function's own role and least-privilege policies, the
// alert state table, encryption, transport and deletion policies, alarms,
// schedule, failure handling, partition-neutral ARNs, the optional permissions
// for other accounts, parity of every parameter with the function's
// configuration loader, Serverless Application Repository metadata, cfn-lint),
// member-role.yaml (the role in member accounts: trust, exact permissions,
// StackSet readiness, cfn-lint), samconfig.toml, LICENSE, the sample invoke
// payloads in events/, and the Makefile targets `sam build` calls and a SAM user
// runs. The tests read what CloudFormation deploys: the templates as
// aws-sam-translator transforms them (scripts/cfn.py through python3), and
// for what depends on parameters (conditions, rules, resolved policies and
// environment) the stacks moto_server's CloudFormation creates; the roles'
// action lists are checked against the calls of the deploy rehearsal
// (internal/rehearsal). It has no code outside its tests.
package samtemplate
