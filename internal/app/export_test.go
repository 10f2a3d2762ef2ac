package app

// NewServiceWithOrg is newService for the tests of package app_test.
var NewServiceWithOrg = newService
