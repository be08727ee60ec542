package robustness

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestRobustnessScenario runs one scenario named by CAIRN_ROBUSTNESS_SCENARIO
// as target-size/fault/seed-N (the name a run's subtest and report give),
// to reproduce a failed run:
//
//	CAIRN_ROBUSTNESS_SCENARIO=cairn-3/member-replace/seed-2042 go test ./tests/robustness -run TestRobustnessScenario -v
func TestRobustnessScenario(t *testing.T) {
	name := os.Getenv("CAIRN_ROBUSTNESS_SCENARIO")
	if name == "" {
		t.Skip("set CAIRN_ROBUSTNESS_SCENARIO=target-size/fault/seed-N")
	}
	sc, err := parseScenario(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := longConfig
	if hooks := os.Getenv("CAIRN_ROBUSTNESS_FAILPOINTS"); hooks != "" {
		cfg.Env = []string{"CAIRN_TEST_FAILPOINTS=" + hooks}
	}
	res := runScenario(t, sc, cfg)
	if res.failed() {
		t.Fatal(res.summary())
	}
	t.Log(res.summary())
	t.Log(res.timeline())
}

// parseScenario reads "target-size/fault/seed-N".
func parseScenario(s string) (scenario, error) {
	var sc scenario
	var a, b, c string
	parts := strings.SplitN(s, "/", 3)
	if len(parts) != 3 {
		return sc, fmt.Errorf("scenario %q: want target-size/fault/seed-N", s)
	}
	a, b, c = parts[0], parts[1], parts[2]
	i := len(a) - 1
	for i >= 0 && a[i] != '-' {
		i--
	}
	if i < 0 {
		return sc, fmt.Errorf("scenario %q: no size", s)
	}
	sc.Target = a[:i]
	if _, err := fmt.Sscanf(a[i+1:], "%d", &sc.Members); err != nil {
		return sc, fmt.Errorf("scenario %q: size: %v", s, err)
	}
	sc.Fault = b
	if _, err := fmt.Sscanf(c, "seed-%d", &sc.Seed); err != nil {
		return sc, fmt.Errorf("scenario %q: seed: %v", s, err)
	}
	return sc, nil
}
