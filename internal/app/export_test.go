package app

// NewEngineWithOrg is newEngine for the tests of package app_test.
var NewEngineWithOrg = newEngine
