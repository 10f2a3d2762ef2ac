package samtemplate

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/thumbprint-drift/thumbprint-drift/internal/config"
)

// Template/function parity (DESIGN.md, "Configuration"): every value a template
// parameter admits, the function accepts, so no deploy succeeds with a setting
// that stops every invocation; and the template refuses nothing the function
// would accept, except forms listed here with the reason that is harmless.
//
// "CloudFormation admits it" is evaluated here from the parameter's Type,
// AllowedValues, AllowedPattern, MinLength, MaxLength, MinValue and MaxValue and
// the template's Rules. "The function accepts it" is config.Load over the
// function's environment as CloudFormation would resolve it with that value.

// cfnNumber is what a Number parameter admits: an integer or a decimal, with an
// optional sign and exponent (CloudFormation checks only that it is a number).
var cfnNumber = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// parameterAdmits returns nil when CloudFormation would accept value for the
// parameter declared as p, else why not.
func parameterAdmits(p map[string]any, value string) error {
	switch p["Type"] {
	case "String":
		n := utf8.RuneCountInString(value)
		if min, ok := p["MinLength"]; ok && float64(n) < toFloat(min) {
			return fmt.Errorf("shorter than MinLength %v", min)
		}
		if max, ok := p["MaxLength"]; ok && float64(n) > toFloat(max) {
			return fmt.Errorf("longer than MaxLength %v", max)
		}
		if pattern, ok := p["AllowedPattern"].(string); ok {
			re, err := wholeMatch(pattern)
			if err != nil {
				return err
			}
			if !re.MatchString(value) {
				return fmt.Errorf("does not match AllowedPattern %s", pattern)
			}
		}
	case "Number":
		if !cfnNumber.MatchString(value) {
			return fmt.Errorf("not a number")
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("not a number: %v", err)
		}
		if min, ok := p["MinValue"]; ok && f < toFloat(min) {
			return fmt.Errorf("below MinValue %v", min)
		}
		if max, ok := p["MaxValue"]; ok && f > toFloat(max) {
			return fmt.Errorf("above MaxValue %v", max)
		}
	default:
		return fmt.Errorf("Type %v is not evaluated by this test; add it", p["Type"])
	}
	if allowed, ok := p["AllowedValues"]; ok && !slices.Contains(strs(allowed), value) {
		return fmt.Errorf("not one of AllowedValues %v", strs(allowed))
	}
	return nil
}

var (
	patternsMu sync.Mutex
	patterns   = map[string]*regexp.Regexp{}
)

// wholeMatch compiles an AllowedPattern to match the whole value, as
// CloudFormation does (Java's String.matches), once per pattern.
func wholeMatch(pattern string) (*regexp.Regexp, error) {
	patternsMu.Lock()
	defer patternsMu.Unlock()
	if re, ok := patterns[pattern]; ok {
		return re, nil
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("AllowedPattern %q: %v", pattern, err)
	}
	patterns[pattern] = re
	return re, nil
}

func toFloat(v any) float64 {
	f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
	return f
}

// admits returns nil when CloudFormation would create the stack with params
// (every other parameter at its Default), else why not: each parameter's
// constraints as the transformed template declares them, and the template's
// Rules as moto's CloudFormation evaluates their assertions.
func (tp *template) admits(t *testing.T, params map[string]string) error {
	t.Helper()
	declared, _ := tp.doc["Parameters"].(map[string]any)
	for name := range params {
		if _, ok := declared[name]; !ok {
			return fmt.Errorf("%s is not a parameter", name)
		}
	}
	for name, p := range declared {
		v, ok := params[name]
		if !ok {
			def, has := p.(map[string]any)["Default"]
			if !has {
				return fmt.Errorf("parameter %s has no value and no Default", name)
			}
			v = fmt.Sprint(def)
		}
		if err := parameterAdmits(p.(map[string]any), v); err != nil {
			return fmt.Errorf("%s %q: %w", name, v, err)
		}
	}
	if failed := tp.failedRules(t, params); len(failed) > 0 {
		return fmt.Errorf("Rules refuse it: %s", strings.Join(failed, "; "))
	}
	return nil
}

// functionEnv is the function's environment for params: the environment
// Lambda holds for the function of a stack created with every parameter at
// its Default, with each variable that holds a parameter (a Ref in the
// transformed template) set to params' value.
// TestStackEnvironmentHoldsParameters checks that reading on a stack created
// with a value other than the Default for every such parameter.
func functionEnv(t *testing.T, tp *template, params map[string]string) map[string]string {
	t.Helper()
	env := maps.Clone(tp.deploy(t, "", nil).Env)
	for param, vars := range envParameters(t, tp) {
		if v, ok := params[param]; ok {
			for _, variable := range vars {
				env[variable] = v
			}
		}
	}
	return env
}

// loadEnv is config.Load over env, as the function calls it with os.Getenv.
func loadEnv(env map[string]string) (config.Config, error) {
	return config.Load(func(k string) string { return env[k] })
}

// envParameters returns, for each parameter the function's environment
// holds, the variables it feeds: the variables whose value in the transformed
// template is a Ref of that parameter.
func envParameters(t *testing.T, tp *template) map[string][]string {
	t.Helper()
	vars, _ := lookup(tp.functionProps(t, functionID), "Environment", "Variables").(map[string]any)
	declared, _ := tp.doc["Parameters"].(map[string]any)
	out := map[string][]string{}
	for variable, v := range vars {
		if r, ok := lookup(v, "Ref").(string); ok {
			if _, isParam := declared[r]; isParam {
				out[r] = append(out[r], variable)
			}
			continue
		}
		// A variable may hold a resource (a bucket only when sharded): only a
		// parameter inside some other expression is beyond this reading.
		refs(v, func(name string) {
			if _, isParam := declared[name]; isParam {
				t.Errorf("environment %s = %#v holds parameter %s in an expression; extend envParameters", variable, v, name)
			}
		})
	}
	return out
}

// parityCase walks one parameter through values.
type parityCase struct {
	param string
	// context sets other parameters a value needs (a Rule ties them).
	context map[string]string
	values  []string
	// lenient lists values the function accepts and the template refuses
	// deliberately, each with why that is harmless. Blank values (the function's
	// default), surrounding spaces and letter case, where the function reads the
	// value as its canonical form that the template admits, need no entry.
	lenient map[string]string
	// sweep values must agree exactly; no leniency applies to them.
	sweep []string
}

// probes are tried on every parameter, whatever its kind.
var probes = []string{"", " ", "0", "-1", "1", "8", "8.0", "8.5", "0.5", "1e1", "0x10", "true", "x", "a b", "*", strings.Repeat("a", 300)}

// wholeNumber cases: the range's edges, one past each, decimals and
// spellings CloudFormation's Number would admit.
func wholeNumber(param string, lo, hi int) parityCase {
	c := parityCase{
		param: param,
		values: []string{
			strconv.Itoa(lo), strconv.Itoa(hi), strconv.Itoa(lo - 1), strconv.Itoa(hi + 1), strconv.Itoa((lo + hi) / 2),
			fmt.Sprintf("%d.0", lo), fmt.Sprintf("%d.0", hi), fmt.Sprintf("%d.5", lo), fmt.Sprintf("%d.9", hi-1),
			fmt.Sprintf("%de0", lo), fmt.Sprintf("%d.", lo), "." + strconv.Itoa(lo), "-0", "00",
			"0" + strconv.Itoa(lo), "+" + strconv.Itoa(lo), "1_0", strconv.Itoa(hi) + "0",
		},
		lenient: map[string]string{
			"0" + strconv.Itoa(lo): "a leading zero: the function reads the same number",
			"+" + strconv.Itoa(lo): "a plus sign: the function reads the same number",
		},
	}
	for n := lo - 20; n <= hi+20; n++ {
		c.sweep = append(c.sweep, strconv.Itoa(n), strconv.Itoa(n)+".0")
	}
	return c
}

// durationForms are spellings Go's time.ParseDuration reads that the templates'
// duration patterns leave out; the function may accept them.
var durationForms = map[string]string{
	".5s":   "no digit before the point",
	"1.s":   "no digit after the point",
	"+10s":  "a plus sign",
	"010s":  "a leading zero",
	"1m75s": "more than 59 seconds after minutes",
	"0m10s": "zero minutes",
	"0h1m":  "zero hours",
	"1s1m":  "units out of order",
	"1h1h":  "a unit twice",
	"1.5ms": "fractional milliseconds",
	"1ns":   "nanoseconds",
	"1us":   "microseconds",
	"1µs":   "microseconds",
	"-0s":   "negative zero",
}

func durationLenient(keys ...string) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		why, ok := durationForms[k]
		if !ok {
			panic("no duration form " + k)
		}
		m[k] = "Go's duration syntax allows " + why + "; the template admits the usual spelling"
	}
	return m
}

// shardSizeCase: 0 (one invocation) or config.MinShardSize to
// config.MaxShardSize, in organisation mode (a Rule ties them).
func shardSizeCase() parityCase {
	lo, hi := config.MinShardSize, config.MaxShardSize
	c := parityCase{
		param:   "ShardSize",
		context: map[string]string{"OrgRoleName": "thumbprint-drift-member"},
		values: []string{
			"0", strconv.Itoa(lo), strconv.Itoa(hi), strconv.Itoa(lo - 1), strconv.Itoa(hi + 1), "1", "1000",
			"10.0", "1e1", "010", "+10", "00", "-0",
		},
		lenient: map[string]string{
			"010": "a leading zero: the function reads the same number",
			"+10": "a plus sign: the function reads the same number",
			"00":  "a leading zero: the function reads 0, which the template admits",
			"-0":  "negative zero: the function reads 0, which the template admits",
		},
	}
	for n := -5; n <= lo+20; n++ {
		c.sweep = append(c.sweep, strconv.Itoa(n), strconv.Itoa(n)+".0")
	}
	for n := hi - 20; n <= hi+20; n++ {
		c.sweep = append(c.sweep, strconv.Itoa(n))
	}
	return c
}

func probeTimeoutCase() parityCase {
	c := parityCase{
		param: "ProbeTimeout",
		values: []string{
			// 100ms to 5m, config.MinTimeout to config.MaxTimeout.
			"100ms", "300000ms", "0.1s", "0.100000000s", "300s", "300.0s", "300.000000000s", "5m", "5m0s", "1m", "1m0s",
			"10s", "1500ms", "2.5s", "1m30s", "4m59.999999999s", "299.999999999s", "1s",
			"99ms", "300001ms", "0.09s", "0.099999999s", "300.000000001s", "301s", "6m", "5m1s", "5m0.5s", "5m0.0s",
			"0s", "0ms", "0m", "-1s", "10", "ten", "1h", "1d", "0.1", "s", "ms", "1m30", "10 s", "10S",
			"0.0025m", "100000us", "100000000ns", "0.001h", "1000000000000000000000ms",
			".5s", "1.s", "+10s", "010s", "1m75s", "0m10s", "0h1m", "1s1m", "1ns", "1.5ms",
		},
		lenient: durationLenient(".5s", "1.s", "+10s", "010s", "1m75s", "0m10s", "0h1m", "1s1m"),
	}
	for k, v := range map[string]string{
		"0.0025m":     "fractional minutes (150ms)",
		"100000us":    "microseconds (100ms)",
		"100000000ns": "nanoseconds (100ms)",
		"0.001h":      "fractional hours (3.6s)",
	} {
		c.lenient[k] = "Go's duration syntax allows " + v + "; the template admits the usual spelling"
	}
	for n := 0; n <= 1200; n++ {
		c.sweep = append(c.sweep, fmt.Sprintf("%dms", n))
	}
	for n := 298800; n <= 301200; n++ {
		c.sweep = append(c.sweep, fmt.Sprintf("%dms", n))
	}
	for n := 0; n <= 400; n++ {
		c.sweep = append(c.sweep, fmt.Sprintf("%ds", n), fmt.Sprintf("%d.5s", n), fmt.Sprintf("%d.05s", n))
	}
	for n := 0; n <= 9; n++ {
		c.sweep = append(c.sweep, fmt.Sprintf("0.0%ds", n), fmt.Sprintf("0.%ds", n), fmt.Sprintf("0.%d9s", n))
	}
	for m := 1; m <= 6; m++ {
		c.sweep = append(c.sweep, fmt.Sprintf("%dm", m))
		for s := 0; s <= 59; s++ {
			c.sweep = append(c.sweep, fmt.Sprintf("%dm%ds", m, s), fmt.Sprintf("%dm%d.5s", m, s))
		}
	}
	return c
}

// offDuration cases: a Go duration of 0 or more (0 turns the feature off).
func offDuration(param string) parityCase {
	c := parityCase{
		param: param,
		values: []string{
			"0", "0s", "0h", "0ms", "24h", "720h", "168h", "1ms", "1s", "90s", "12h30m", "0.5h", "1h1m1s1ms",
			"999999h", "999999.999999999h999999.999999999m999999.999999999s999999ms",
			"-1h", "-1s", "24", "1d", "h", "1h 1m", "2562048h", "1000000h", "abc", "1H", "00", "24H",
			".5s", "1.s", "+10s", "010s", "1m75s", "0m10s", "0h1m", "1s1m", "1h1h", "1.5ms", "1ns", "1us", "1µs", "-0s",
		},
		lenient: durationLenient(".5s", "1.s", "+10s", "1s1m", "1h1h", "1.5ms", "1ns", "1us", "1µs", "-0s"),
	}
	c.lenient["1000000h"] = "at most 6 digits per unit (999999h, 114 years) keeps every admitted sum below Go's limit of 2562047h"
	for n := 0; n <= 100; n++ {
		c.sweep = append(c.sweep, fmt.Sprintf("%dms", n))
		for _, unit := range []string{"h", "m", "s"} {
			c.sweep = append(c.sweep, fmt.Sprintf("%d%s", n, unit), fmt.Sprintf("%d.25%s", n, unit))
		}
	}
	return c
}

// choice cases: each allowed value, the same in capitals and with a space
// (harmless forms the function reads as the allowed value), and refused values.
func choice(param string, allowed, refused []string) parityCase {
	c := parityCase{param: param}
	for _, v := range allowed {
		c.values = append(c.values, v, strings.ToUpper(v), " "+v)
	}
	c.values = append(c.values, refused...)
	return c
}

const (
	role64  = "arn:aws:iam::111111111111:role/path/to/" + "r123456789r123456789r123456789r123456789r123456789r123456789r123"
	bus256  = "b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b123456789b12345"
	busArnP = "arn:aws:events:us-east-1:123456789012:event-bus/"
)

func parityCases() []parityCase {
	cases := []parityCase{
		wholeNumber("Concurrency", config.MinConcurrency, config.MaxConcurrency),
		wholeNumber("ProbeConcurrency", config.MinProbeConcurrency, config.MaxProbeConcurrency),
		wholeNumber("ProbeHandshakes", config.MinHandshakes, config.MaxHandshakes),
		wholeNumber("AccountConcurrency", config.MinAccountConcurrency, config.MaxAccountConcurrency),
		wholeNumber("ProbeFailuresToAlert", config.MinProbeFailuresToAlert, config.MaxProbeFailuresToAlert),
		probeTimeoutCase(),
		offDuration("RealertInterval"),
		offDuration("ExpiryWarning"),
		choice("DriftMode", []string{"remediate", "alert", "report"}, []string{"ignore", "fix", "remediat", "reports"}),
		choice("AlertFormat", []string{"json", "chatbot"}, []string{"slack", "jsonx", "chat bot"}),
		choice("SecurityHub", []string{"true", "false"}, []string{"1", "0", "yes", "t", "truee"}),
		choice("OrgIncludeManagementAccount", []string{"true", "false"}, []string{"1", "0", "yes", "t", "truee"}),
		shardSizeCase(),
		{
			param: "EventBusName",
			values: []string{
				"", "default", "security-events", "a", "a/b.c_d-e", bus256, bus256 + "x",
				busArnP + "central", busArnP + bus256, busArnP + bus256 + "x", busArnP,
				"arn:aws-cn:events:cn-north-1:123456789012:event-bus/central",
				"arn:aws:events:us-east-1:12345:event-bus/x", "arn:aws:events::123456789012:event-bus/x",
				"arn:aws:events:us-east-1:123456789012:rule/x", "arn:aws:sns:us-east-1:123456789012:x",
				"my bus", "bus*", "bus:x", "arn:aws:events:us-east-1:123456789012:event-bus/a b",
			},
		},
		{
			param: "AccountRoleArns",
			values: []string{
				"", roleA, roleA + "," + roleB, roleA + "," + roleB + "," + roleA, role64, role64 + "4",
				"arn:aws-us-gov:iam::333333333333:role/x", "arn:aws:iam::111111111111:role/a/b/c/name",
				roleA + ", " + roleB, roleA + ",", "," + roleA, roleA + ",," + roleB, ",", " ,",
				"*", "arn:aws:iam::*:role/thumbprint-drift-member", "arn:aws:iam::111111111111:role/*",
				"arn:aws:iam::111111111111:role/", "arn:aws:iam::11111111111:role/x", "arn:aws:iam::111111111111:user/x",
				"arn:aws:iam::111111111111:root", "arn:aws:sts::111111111111:assumed-role/x/y", "thumbprint-drift-member",
				"arn:aws:iam::111111111111:role/a//b", "arn:aws:iam::111111111111:role/a/", "arn:aws:iam::111111111111:role//a",
				"arn:aws:iam::111111111111:role/a,b", "arn:aws:iam::111111111111:role/a b", "arn:aws:iam::111111111111:role/a*",
			},
			lenient: map[string]string{
				roleA + ", " + roleB: "the function trims each item; the template refuses padding because each item becomes a policy Resource verbatim",
				roleA + ",":          "the function skips empty items; the template refuses them because each item becomes a policy Resource verbatim",
				"," + roleA:          "the function skips empty items; the template refuses them because each item becomes a policy Resource verbatim",
				roleA + ",," + roleB: "the function skips empty items; the template refuses them because each item becomes a policy Resource verbatim",
			},
		},
		{
			param:  "OrgRoleName",
			values: []string{"", "thumbprint-drift-member", "a", "Role_1+=,.@-", strings.Repeat("r", 64), strings.Repeat("r", 65), "*", "thumbprint-*", "path/name", "has space"},
		},
		{
			// An external id is used only with accounts to assume (a Rule).
			param:   "AssumeRoleExternalId",
			context: map[string]string{"OrgRoleName": "thumbprint-drift-member"},
			values: []string{
				"", "ab", "9f3c2a7e-0d1b-4c55", "team=platform,env:prod/x@", strings.Repeat("x", 1224),
				"a", strings.Repeat("x", 1225), "with space", "quote\"", " ab",
			},
		},
	}
	for i := range cases {
		cases[i].values = append(cases[i].values, probes...)
	}
	return cases
}

// harmlessForm reports why the function accepting value while the template
// refuses it is harmless, when value is blank (the function's default), or a
// spelling with surrounding spaces or other letter case that the function
// reads as a value the template admits; "" otherwise.
func harmlessForm(t *testing.T, tp *template, env map[string]string, c parityCase, variable, value string, got config.Config) string {
	unset := withParam(env, variable, "")
	if strings.TrimSpace(value) == "" {
		if def, err := loadEnv(unset); err == nil && reflect.DeepEqual(def, got) {
			return "blank: the function takes its default"
		}
	}
	for _, canonical := range []string{strings.TrimSpace(value), strings.ToLower(strings.TrimSpace(value))} {
		if canonical == value || canonical == "" {
			continue
		}
		if tp.admits(t, withParam(c.context, c.param, canonical)) != nil {
			continue
		}
		if cfg, err := loadEnv(withParam(env, variable, canonical)); err == nil && reflect.DeepEqual(cfg, got) {
			return "the function reads it as " + strconv.Quote(canonical) + ", which the template admits"
		}
	}
	return ""
}

// maps returns a copy of m with k set to v.
func withParam(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for x, y := range m {
		if x != k {
			out[x] = y
		}
	}
	return out
}

func TestTemplateFunctionParity(t *testing.T) {
	tp := loadTemplate(t)
	fed := envParameters(t, tp)
	cases := parityCases()

	var covered []string
	for _, c := range cases {
		covered = append(covered, c.param)
	}
	for param, vars := range fed {
		if !slices.Contains(covered, param) {
			t.Errorf("parameter %s feeds %v but has no parity case: add one to parityCases", param, vars)
		}
	}

	for _, c := range cases {
		t.Run(c.param, func(t *testing.T) {
			vars := fed[c.param]
			if len(vars) != 1 {
				t.Fatalf("%s feeds environment variables %v, want exactly one", c.param, vars)
			}
			variable := vars[0]
			if p, _ := lookup(tp.doc, "Parameters", c.param).(map[string]any); p["Type"] == "Number" {
				t.Errorf("%s is a Number: CloudFormation then admits decimals such as 8.5 the function refuses; use a String with an AllowedPattern", c.param)
			}
			check := func(value string, sweep bool) {
				params := withParam(c.context, c.param, value)
				cfnErr := tp.admits(t, params)
				env := functionEnv(t, tp, params)
				if env[variable] != value {
					t.Fatalf("%s=%q reaches %s as %q", c.param, value, variable, env[variable])
				}
				cfg, loadErr := loadEnv(env)
				why, listed := c.lenient[value]
				switch {
				case cfnErr == nil && loadErr != nil:
					t.Errorf("%s=%q: CloudFormation admits it, and the function refuses it at every invocation: %v", c.param, value, loadErr)
				case cfnErr != nil && loadErr == nil && !sweep && listed:
				case cfnErr != nil && loadErr == nil && !sweep && harmlessForm(t, tp, env, c, variable, value, cfg) != "":
				case cfnErr != nil && loadErr == nil:
					t.Errorf("%s=%q: the template refuses it (%v), and the function accepts it as %s=%q; admit it, or list it as lenient with the reason that is harmless", c.param, value, cfnErr, variable, value)
				case listed:
					t.Errorf("%s=%q is listed as lenient (%s), but the template and the function agree (template: %v; function: %v)", c.param, value, why, cfnErr, loadErr)
				}
			}
			for _, v := range c.values {
				check(v, false)
			}
			for _, v := range c.sweep {
				check(v, true)
			}
			for v := range c.lenient {
				if !slices.Contains(c.values, v) {
					t.Errorf("lenient value %q of %s is not among its values", v, c.param)
				}
			}
		})
	}
}

// TestTemplateFunctionParityCombinations covers the settings that depend on
// each other: the template's Rules and the loader's cross-checks agree.
func TestTemplateFunctionParityCombinations(t *testing.T) {
	tp := loadTemplate(t)
	tests := []struct {
		name   string
		params map[string]string
		want   bool // accepted by both
		// lenient: the function accepts what the template refuses, and why that is harmless.
		lenient string
	}{
		{name: "defaults", want: true},
		{name: "role list and organisation", params: map[string]string{"AccountRoleArns": roleA, "OrgRoleName": "m"}},
		{name: "role list with external id", params: map[string]string{"AccountRoleArns": roleA, "AssumeRoleExternalId": "ext-1"}, want: true},
		{name: "organisation from a delegated administrator, management account included", params: map[string]string{"OrgRoleName": "m", "OrgIncludeManagementAccount": "true"}, want: true},
		// The state table always exists, so Security Hub always has its state.
		{name: "security hub", params: map[string]string{"SecurityHub": "true"}, want: true},
		{name: "everything set", params: map[string]string{
			"SecurityHub": "true", "EventBusName": busArnP + "central", "AlertFormat": "chatbot", "RealertInterval": "0",
			"ExpiryWarning": "0", "ProbeFailuresToAlert": "100", "ProbeConcurrency": "256", "Concurrency": "64",
			"ProbeTimeout": "5m", "ProbeHandshakes": "5", "AccountRoleArns": roleA + "," + roleB, "AccountConcurrency": "32",
			"AssumeRoleExternalId": strings.Repeat("x", 1224), "DriftMode": "report",
		}, want: true},
		{
			name: "external id without accounts", params: map[string]string{"AssumeRoleExternalId": "ext-1"},
			lenient: "an external id with no account to assume changes nothing; the template says so instead of ignoring it",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfnErr := tp.admits(t, tc.params)
			_, loadErr := loadEnv(functionEnv(t, tp, tc.params))
			switch {
			case cfnErr == nil && loadErr != nil:
				t.Errorf("%v: CloudFormation admits it, and the function refuses it: %v", tc.params, loadErr)
			case tc.lenient != "":
				if cfnErr == nil || loadErr != nil {
					t.Errorf("%v is listed as lenient (%s): template %v, function %v", tc.params, tc.lenient, cfnErr, loadErr)
				}
			case cfnErr != nil && loadErr == nil:
				t.Errorf("%v: the template refuses it (%v), and the function accepts it", tc.params, cfnErr)
			case tc.want && cfnErr != nil:
				t.Errorf("%v: refused by both (template: %v; function: %v), want accepted", tc.params, cfnErr, loadErr)
			case !tc.want && cfnErr == nil:
				t.Errorf("%v: accepted by both, want refused", tc.params)
			}
		})
	}
}

// TestTemplateDefaultsAreFunctionDefaults: a stack deployed with every
// parameter at its Default runs with the function's own defaults, so the
// README's one table of defaults is true of both.
func TestTemplateDefaultsAreFunctionDefaults(t *testing.T) {
	tp := loadTemplate(t)
	env := functionEnv(t, tp, nil)
	got, err := loadEnv(env)
	if err != nil {
		t.Fatalf("the template's defaults stop the function: %v", err)
	}
	want := config.Default()
	want.TopicARN = env["SNS_TOPIC_ARN"]
	want.StateTable = env["STATE_TABLE"]
	if want.TopicARN == "" || want.StateTable == "" {
		t.Fatalf("SNS_TOPIC_ARN %q and STATE_TABLE %q: want both set from the stack's resources", want.TopicARN, want.StateTable)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with the template's defaults the function loads\n%+v\nwant its own defaults\n%+v", got, want)
	}
	for param, vars := range envParameters(t, tp) {
		def := lookup(tp.doc, "Parameters", param, "Default")
		unset, err := loadEnv(withParam(env, vars[0], ""))
		if err != nil || !reflect.DeepEqual(unset, got) {
			t.Errorf("%s Default %v differs from the function's default for %s (unset: %+v, %v)", param, def, vars[0], unset, err)
		}
	}
}

func TestParameterAdmits(t *testing.T) {
	tests := []struct {
		name  string
		p     map[string]any
		value string
		want  bool
	}{
		{"number decimal", map[string]any{"Type": "Number", "MinValue": 1, "MaxValue": 64}, "8.5", true},
		{"number exponent", map[string]any{"Type": "Number", "MinValue": 1, "MaxValue": 64}, "1e1", true},
		{"number below", map[string]any{"Type": "Number", "MinValue": 1}, "0.5", false},
		{"number above", map[string]any{"Type": "Number", "MaxValue": 64}, "64.1", false},
		{"number empty", map[string]any{"Type": "Number"}, "", false},
		{"number word", map[string]any{"Type": "Number"}, "eight", false},
		{"pattern whole value", map[string]any{"Type": "String", "AllowedPattern": "[a-z]+"}, "ab1", false},
		{"pattern alternation anchored", map[string]any{"Type": "String", "AllowedPattern": "a|b"}, "ab", false},
		{"pattern match", map[string]any{"Type": "String", "AllowedPattern": "^$|^[a-z]+$"}, "", true},
		{"min length", map[string]any{"Type": "String", "MinLength": 2}, "a", false},
		{"max length counts characters", map[string]any{"Type": "String", "MaxLength": 2}, "µs", true},
		{"allowed values", map[string]any{"Type": "String", "AllowedValues": []any{"true", "false"}}, "True", false},
		{"allowed value", map[string]any{"Type": "String", "AllowedValues": []any{"true", "false"}}, "false", true},
		{"unknown type", map[string]any{"Type": "CommaDelimitedList"}, "a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := parameterAdmits(tc.p, tc.value); (err == nil) != tc.want {
				t.Errorf("parameterAdmits(%v, %q) = %v, want admitted %v", tc.p, tc.value, err, tc.want)
			}
		})
	}
}

// TestStackEnvironmentHoldsParameters: in stacks moto's CloudFormation
// created with a value other than the Default for every parameter the
// function's environment holds, Lambda holds each such variable as exactly
// its parameter's value, which is what functionEnv reads the parity cases by.
func TestStackEnvironmentHoldsParameters(t *testing.T) {
	tp := loadTemplate(t)
	fed := envParameters(t, tp)
	stacks := []map[string]string{
		{
			"DriftMode": "alert", "Concurrency": "7", "ProbeConcurrency": "9", "ProbeTimeout": "9s", "ProbeHandshakes": "3",
			"AccountRoleArns": roleA, "AssumeRoleExternalId": "ext-1", "AccountConcurrency": "5", "RealertInterval": "12h",
			"ProbeFailuresToAlert": "3", "ExpiryWarning": "168h", "AlertFormat": "chatbot", "EventBusName": "security-events",
			"SecurityHub": "true", "ShardSize": "25",
		},
		// The Rules allow one way of choosing accounts at a time.
		{"OrgRoleName": "thumbprint-drift-member", "OrgIncludeManagementAccount": "true"},
	}
	covered := map[string]bool{}
	for i, params := range stacks {
		if err := tp.admits(t, params); err != nil {
			t.Fatalf("stack %d: the template refuses %v: %v", i, params, err)
		}
		env := tp.deploy(t, "", params).Env
		for param, value := range params {
			if def := fmt.Sprint(lookup(tp.doc, "Parameters", param, "Default")); def == value {
				t.Errorf("%s=%q is its Default: pick another value", param, value)
			}
			for _, variable := range fed[param] {
				covered[param] = true
				if env[variable] != value {
					t.Errorf("stack %d: %s=%q reaches the function as %s=%q", i, param, value, variable, env[variable])
				}
			}
		}
	}
	for param := range fed {
		if !covered[param] {
			t.Errorf("parameter %s feeds %v and no stack here sets it", param, fed[param])
		}
	}
}
