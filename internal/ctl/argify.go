package ctl

import (
	"fmt"
	"regexp"
)

// argPattern matches one shell-like word: a "double-quoted" string with Go
// escapes, a 'single-quoted' string, or a run of non-space characters.
var argPattern = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`)

// argify splits a txn request line into words, unquoting quoted ones.
func argify(s string) ([]string, error) {
	args := argPattern.FindAllString(s, -1)
	for i, arg := range args {
		switch {
		case arg == "":
		case arg[0] == '\'':
			args[i] = arg[1 : len(arg)-1]
		case arg[0] == '"':
			if _, err := fmt.Sscanf(arg, "%q", &args[i]); err != nil {
				return nil, fmt.Errorf("unquote %s: %w", arg, err)
			}
		}
	}
	return args, nil
}
